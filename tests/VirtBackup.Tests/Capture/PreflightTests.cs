using System.Reflection;
using VirtBackup.Tests.Fakes;

namespace VirtBackup.Tests.Capture;

/// <summary>The preflight's two readability checks, against host files whose answers the test releases.</summary>
public class PreflightTests
{
    private const string Nvram = "/var/lib/libvirt/qemu/nvram/vm1_VARS.fd";
    private const string Tpm = "/var/lib/libvirt/swtpm/0123/tpm2";

    [Fact(Timeout = 10_000)]
    public async Task Both_checks_are_asked_before_either_answers_and_the_nvram_refusal_is_reported_when_both_fail()
    {
        using var directory = new TestDirectory();

        var (preflight, held) = StartPreflight(directory);

        Assert.Equal([Nvram, Tpm], held.Asked.Keys.ToArray());
        held.Asked[Tpm].SetException(new PreflightException("the TPM state directory"));
        held.Asked[Nvram].SetException(new PreflightException("the NVRAM file"));
        var error = await Assert.ThrowsAsync<PreflightException>(() => preflight);
        Assert.Equal("the NVRAM file", error.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_tpm_refusal_is_reported_when_only_the_tpm_check_fails()
    {
        using var directory = new TestDirectory();

        var (preflight, held) = StartPreflight(directory);

        held.Asked[Nvram].SetResult();
        held.Asked[Tpm].SetException(new PreflightException("the TPM state directory"));
        var error = await Assert.ThrowsAsync<PreflightException>(() => preflight);
        Assert.Equal("the TPM state directory", error.Message);
    }

    /// <summary>Starts the preflight of a domain with both an NVRAM file and a TPM state directory; nothing answers yet.</summary>
    private static (Task Preflight, HeldChecks Held) StartPreflight(TestDirectory directory)
    {
        var files = DispatchProxy.Create<IHostFiles, HeldChecks>();
        var capture = new ConsistentCapture(files, new CaptureMarkers(directory.Path), Serilog.Core.Logger.None);
        var preflight = capture.PreflightAsync(new StateLocation(Nvram, Tpm, null, QemuConf.Defaults), CancellationToken.None);
        return (preflight, (HeldChecks)(object)files);
    }

    /// <summary>Host files that answer nothing but <see cref="IHostFiles.CheckReadableAsync"/>, each when the test says so.</summary>
    public class HeldChecks : DispatchProxy
    {
        public Dictionary<string, TaskCompletionSource> Asked { get; } = [];

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name != nameof(IHostFiles.CheckReadableAsync) || args?[0] is not string path)
            {
                throw new InvalidOperationException($"the preflight called {targetMethod?.Name}");
            }

            var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Asked.Add(path, answer);
            return answer.Task;
        }
    }
}
