using System.Xml.Linq;

namespace VirtBackup.Tests.Fakes;

/// <summary>
/// A domain in memory behind <see cref="IDomain"/>, behaving as libvirt 9.0 does for the calls virtbackup makes: a
/// state (running, paused, shut off), a guest agent that freezes and thaws, one pull backup job, checkpoints (parents
/// first). Every call is recorded in <see cref="Calls"/> by its libvirt function name. Faults: <see cref="Fail"/> makes
/// the next calls of one function throw the <see cref="LibvirtException"/> libvirt would (same code, same subclass);
/// <see cref="Vanish"/> makes every call fail as on a domain that was undefined while stopped; <see cref="Before"/> runs
/// an action just before a call does its work (a domain that stops between two calls).
/// </summary>
internal sealed class FakeDomain(string name = "vm1", string uuid = "6a1f3a0e-1111-4222-8333-944455556666") : IDomain
{
    private readonly Dictionary<string, Queue<LibvirtException>> _faults = [];
    private readonly Dictionary<string, Action> _before = [];
    private readonly List<(string Name, string Xml)> _checkpoints = [];
    private bool _vanished;

    public string Name { get; } = name;

    public string Uuid { get; } = uuid;

    public DomainState State { get; set; } = DomainState.Running;

    /// <summary>Whether a guest agent answers; how many file systems it freezes.</summary>
    public bool AgentAnswers { get; set; } = true;

    public int FileSystems { get; set; } = 2;

    public bool Frozen { get; private set; }

    /// <summary>The running backup job's &lt;domainbackup&gt; XML, or null.</summary>
    public string? JobXml { get; set; }

    /// <summary>Whether <c>virDomainAbortJob</c> ends the job (libvirt's pull job ends within milliseconds).</summary>
    public bool AbortEndsJob { get; set; } = true;

    public List<string> Calls { get; } = [];

    /// <summary>The connection this handle came from is dead (libvirtd restarted): every call fails with an RPC error.</summary>
    public bool Disconnected { get; set; }

    public bool Disposed { get; private set; }

    public IReadOnlyList<string> CheckpointNames => [.. _checkpoints.Select(c => c.Name)];

    public bool Active => State is DomainState.Running or DomainState.Paused;

    /// <summary>The next <paramref name="times"/> calls of <paramref name="operation"/> (e.g. <c>virDomainResume</c>) fail with <paramref name="code"/>.</summary>
    public FakeDomain Fail(string operation, LibvirtErrorCode code, string message, int times = 1, LibvirtErrorDomain from = LibvirtErrorDomain.Qemu)
    {
        var queue = _faults.TryGetValue(operation, out var q) ? q : _faults[operation] = new Queue<LibvirtException>();
        for (var i = 0; i < times; i++)
        {
            queue.Enqueue(LibvirtErrors.Of(operation, Name, code, from, message));
        }

        return this;
    }

    /// <summary>Runs <paramref name="action"/> once, when <paramref name="operation"/> is next called (after recording it, before its work or fault).</summary>
    public FakeDomain Before(string operation, Action action)
    {
        _before[operation] = action;
        return this;
    }

    /// <summary>From now on the domain is gone: stopped, undefined, every call fails with VIR_ERR_NO_DOMAIN.</summary>
    public void Vanish()
    {
        _vanished = true;
        State = DomainState.Shutoff;
        JobXml = null;
        Frozen = false;
    }

    /// <summary>Stops the domain (QEMU exits): the job and the freeze go with it; checkpoints stay.</summary>
    public void Stop()
    {
        State = DomainState.Shutoff;
        JobXml = null;
        Frozen = false;
    }

    public void AddCheckpoint(string checkpoint, string? xml = null) => _checkpoints.Add((checkpoint, xml ?? CheckpointXmlOf(checkpoint)));

    public static string CheckpointXmlOf(string checkpoint) =>
        $"<domaincheckpoint><name>{checkpoint}</name><disks><disk name='vda' checkpoint='bitmap'/></disks></domaincheckpoint>";

    public DomainStateInfo GetState()
    {
        Enter("virDomainGetState");
        return new DomainStateInfo(State, 1);
    }

    public bool IsActive()
    {
        Enter("virDomainIsActive");
        return Active;
    }

    public void Suspend()
    {
        Enter("virDomainSuspend");
        RequireActive("virDomainSuspend");
        State = DomainState.Paused;
    }

    public void Resume()
    {
        Enter("virDomainResume");
        RequireActive("virDomainResume");
        if (State != DomainState.Paused)
        {
            throw Error("virDomainResume", LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: domain is not paused");
        }

        State = DomainState.Running;
    }

    public int FSFreeze(IReadOnlyList<string>? mountpoints = null)
    {
        Enter("virDomainFSFreeze");
        RequireAgent("virDomainFSFreeze");
        if (Frozen)
        {
            throw Error("virDomainFSFreeze", LibvirtErrorCode.InternalError, "internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state");
        }

        Frozen = true;
        return FileSystems;
    }

    public int FSThaw(IReadOnlyList<string>? mountpoints = null)
    {
        Enter("virDomainFSThaw");
        RequireAgent("virDomainFSThaw");
        var thawed = Frozen ? FileSystems : 0;
        Frozen = false;
        return thawed;
    }

    public bool IsGuestAgentResponsive(int timeoutSeconds = 5)
    {
        Enter("virDomainQemuAgentCommand");
        return Active && State == DomainState.Running && AgentAnswers;
    }

    public void BackupBegin(string backupXml, string? checkpointXml = null, BackupBeginFlags flags = BackupBeginFlags.None)
    {
        Enter("virDomainBackupBegin");
        RequireActive("virDomainBackupBegin");
        if (JobXml is not null)
        {
            throw Error("virDomainBackupBegin", LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: another job is already running");
        }

        if (checkpointXml is not null)
        {
            var checkpoint = NameOf(checkpointXml);
            if (_checkpoints.Any(c => c.Name == checkpoint))
            {
                throw Error("virDomainBackupBegin", LibvirtErrorCode.InvalidDomainCheckpoint, $"invalid domain checkpoint: domain '{Name}' already has checkpoint '{checkpoint}'");
            }

            _checkpoints.Add((checkpoint, checkpointXml));
        }

        JobXml = backupXml;
    }

    public string BackupGetXml()
    {
        Enter("virDomainBackupGetXMLDesc");
        return JobXml ?? throw Error("virDomainBackupGetXMLDesc", LibvirtErrorCode.NoDomainBackup, "no domain backup job present");
    }

    public void AbortJob()
    {
        Enter("virDomainAbortJob");
        RequireActive("virDomainAbortJob");
        if (JobXml is null)
        {
            throw Error("virDomainAbortJob", LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: no job is active on the domain");
        }

        if (AbortEndsJob)
        {
            JobXml = null;
        }
    }

    public DomainJobStats GetJobStats(DomainJobStatsFlags flags = DomainJobStatsFlags.None)
    {
        Enter("virDomainGetJobStats");
        return JobXml is null
            ? new DomainJobStats(DomainJobType.None, new Dictionary<string, object>())
            : new DomainJobStats(DomainJobType.Unbounded, new Dictionary<string, object> { ["operation"] = (int)DomainJobOperation.Backup });
    }

    public IReadOnlyList<string> ListCheckpoints(CheckpointListFlags flags = CheckpointListFlags.Topological)
    {
        Enter("virDomainListAllCheckpoints");
        return CheckpointNames;
    }

    public void CheckpointCreate(string xml, CheckpointCreateFlags flags = CheckpointCreateFlags.None)
    {
        Enter("virDomainCheckpointCreateXML");
        var checkpoint = NameOf(xml);
        if (_checkpoints.Any(c => c.Name == checkpoint))
        {
            throw Error("virDomainCheckpointCreateXML", LibvirtErrorCode.InvalidDomainCheckpoint, $"invalid domain checkpoint: domain '{Name}' already has checkpoint '{checkpoint}'");
        }

        _checkpoints.Add((checkpoint, xml));
    }

    public string CheckpointGetXml(string name, CheckpointXmlFlags flags = CheckpointXmlFlags.None)
    {
        Enter("virDomainCheckpointGetXMLDesc");
        return _checkpoints.FirstOrDefault(c => c.Name == name).Xml ?? throw NoCheckpoint("virDomainCheckpointLookupByName", name);
    }

    public void CheckpointDelete(string name, CheckpointDeleteFlags flags = CheckpointDeleteFlags.None)
    {
        Enter("virDomainCheckpointDelete");
        var index = _checkpoints.FindIndex(c => c.Name == name);
        if (index < 0)
        {
            throw NoCheckpoint("virDomainCheckpointLookupByName", name);
        }

        if (!Active && !flags.HasFlag(CheckpointDeleteFlags.MetadataOnly))
        {
            throw Error("virDomainCheckpointDelete", LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: domain is not running");
        }

        _checkpoints.RemoveAt(index);
    }

    public void Dispose() => Disposed = true;

    private void Enter(string operation)
    {
        Calls.Add(operation);
        if (_before.Remove(operation, out var action))
        {
            action();
        }

        if (_faults.TryGetValue(operation, out var queue) && queue.TryDequeue(out var fault))
        {
            throw fault;
        }

        if (Disconnected)
        {
            throw LibvirtErrors.Of(operation, Name, LibvirtErrorCode.InternalError, LibvirtErrorDomain.Rpc, "internal error: client socket is closed");
        }

        if (_vanished)
        {
            throw Error(operation, LibvirtErrorCode.NoDomain, $"Domain not found: no domain with matching uuid '{Uuid}' ({Name})");
        }
    }

    private void RequireActive(string operation)
    {
        if (!Active)
        {
            throw Error(operation, LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: domain is not running");
        }
    }

    private void RequireAgent(string operation)
    {
        if (State != DomainState.Running)
        {
            // libvirt asks no agent of a domain that is not running (a paused guest's agent cannot answer).
            throw Error(operation, LibvirtErrorCode.OperationInvalid, "Requested operation is not valid: domain is not running");
        }

        if (!AgentAnswers)
        {
            throw Error(operation, LibvirtErrorCode.AgentUnresponsive, "Guest agent is not responding: QEMU guest agent is not connected");
        }
    }

    private LibvirtException Error(string operation, LibvirtErrorCode code, string message) =>
        LibvirtErrors.Of(operation, Name, code, code == LibvirtErrorCode.NoDomain ? LibvirtErrorDomain.Qemu : LibvirtErrorDomain.Domain, message);

    private LibvirtException NoCheckpoint(string operation, string checkpoint) =>
        LibvirtErrors.Of(operation, Name, LibvirtErrorCode.NoDomainCheckpoint, LibvirtErrorDomain.DomainCheckpoint,
            $"Domain checkpoint not found: no domain checkpoint with matching name '{checkpoint}'");

    private static string NameOf(string checkpointXml) => XElement.Parse(checkpointXml).Element("name")!.Value;
}
