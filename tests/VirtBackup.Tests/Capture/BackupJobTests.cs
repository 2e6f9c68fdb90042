using VirtBackup.Tests.Fakes;

namespace VirtBackup.Tests.Capture;

/// <summary>The backup job's end and its checkpoint's rollback, against a fake domain.</summary>
public class BackupJobTests
{
    private const string Checkpoint = "virtbackup-0123456789ab-0002";

    private static FakeDomain RunningJob()
    {
        var domain = new FakeDomain();
        domain.BackupBegin("<domainbackup mode='pull'/>", FakeDomain.CheckpointXmlOf(Checkpoint));
        domain.Calls.Clear();
        return domain;
    }

    [Fact(Timeout = 10_000)]
    public async Task Ending_a_job_aborts_it_and_looks_again_until_libvirt_says_it_is_gone()
    {
        var domain = RunningJob();
        domain.AbortEndsJob = false;
        // libvirt ends the job a moment after the abort: the second look after it finds it gone.
        domain.Before("virDomainAbortJob", () => domain.Before("virDomainGetJobStats", () => domain.Before("virDomainGetJobStats", () => domain.JobXml = null)));
        await using var job = new BackupJob(domain, Checkpoint, new LogLines().Logger);
        job.Started();

        await job.EndAsync(CancellationToken.None);

        Assert.Equal(["virDomainIsActive", "virDomainGetJobStats", "virDomainAbortJob", "virDomainGetJobStats", "virDomainGetJobStats"], domain.Calls);
        Assert.Null(domain.JobXml);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_job_whose_domain_stops_while_it_ends_counts_as_ended()
    {
        var domain = RunningJob();
        domain.AbortEndsJob = false;
        domain.Before("virDomainAbortJob", () => domain.Before("virDomainGetJobStats", () =>
        {
            domain.Stop();
            domain.Fail("virDomainGetJobStats", LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: domain is not running");
        }));
        await using var job = new BackupJob(domain, Checkpoint, new LogLines().Logger);
        job.Started();

        await job.EndAsync(CancellationToken.None);

        Assert.Equal(["virDomainIsActive", "virDomainGetJobStats", "virDomainAbortJob", "virDomainGetJobStats", "virDomainIsActive"], domain.Calls);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_job_disposed_without_a_commit_is_aborted_and_its_checkpoint_deleted()
    {
        var domain = RunningJob();

        await using (var job = new BackupJob(domain, Checkpoint, new LogLines().Logger))
        {
            job.Started();
        }

        Assert.Equal((null, 0), (domain.JobXml, domain.CheckpointNames.Count));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_committed_job_keeps_its_checkpoint()
    {
        var domain = RunningJob();

        await using (var job = new BackupJob(domain, Checkpoint, new LogLines().Logger))
        {
            job.Started();
            await job.EndAsync(CancellationToken.None);
            job.Commit();
        }

        Assert.Null(domain.JobXml);
        Assert.Equal([Checkpoint], domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_job_libvirt_never_accepted_is_neither_aborted_nor_rolled_back()
    {
        var domain = RunningJob();

        await using (new BackupJob(domain, Checkpoint, new LogLines().Logger))
        {
        }

        Assert.Empty(domain.Calls);
        Assert.Equal([Checkpoint], domain.CheckpointNames);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_rollback_libvirt_refuses_is_reported_not_thrown()
    {
        var domain = RunningJob();
        domain.Fail("virDomainCheckpointDelete", LibvirtErrorCode.OperationFailed, "operation failed: bitmap not found in backing chain");
        var log = new LogLines();

        await using (var job = new BackupJob(domain, Checkpoint, log.Logger))
        {
            job.Started();
        }

        Assert.Equal([Checkpoint], domain.CheckpointNames);
        Assert.Equal(
            $"Warning could not roll back checkpoint \"{Checkpoint}\" of \"vm1\" yet: \"libvirt virDomainCheckpointDelete failed for domain 'vm1': operation failed: bitmap not found in backing chain (libvirt error 9)\"",
            Assert.Single(log.Lines));
    }
}
