using System.ComponentModel;

namespace VirtBackup.Tests.Nbd.Peers;

/// <summary>Runs the qemu/nbdkit command-line tools the tests need; a missing tool fails the test clearly.</summary>
internal static class Tool
{
    public static async Task<string> RunAsync(string tool, params string[] arguments)
    {
        BufferedCommandResult result;
        try
        {
            result = await Cli.Wrap(tool).WithArguments(arguments).WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync();
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException(MissingMessage(tool), e);
        }

        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{tool} {string.Join(' ', arguments)} failed with exit code {result.ExitCode}: {result.StandardError}{result.StandardOutput}");
        }

        return result.StandardOutput;
    }

    public static string MissingMessage(string tool) =>
        $"'{tool}' is not installed. The NBD tests need real peers: install qemu-utils (qemu-nbd, qemu-img, qemu-io) and nbdkit.";

    /// <summary>Creates a qcow2 image and applies qemu-io commands to it (e.g. "write -P 0x11 0 1M").</summary>
    public static async Task CreateQcow2Async(string path, string size, params string[] qemuIoCommands)
    {
        await RunAsync("qemu-img", "create", "-q", "-f", "qcow2", path, size);
        if (qemuIoCommands.Length == 0)
        {
            return;
        }

        var arguments = new List<string> { "-f", "qcow2" };
        foreach (var command in qemuIoCommands)
        {
            arguments.AddRange(["-c", command]);
        }

        arguments.Add(path);
        await RunAsync("qemu-io", [.. arguments]);
    }
}
