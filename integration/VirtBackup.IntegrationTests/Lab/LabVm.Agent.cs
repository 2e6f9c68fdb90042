using System.Text.Json;
using System.Text.Json.Nodes;

namespace VirtBackup.IntegrationTests.Lab;

/// <summary>
/// The guest agent of a VM made with <c>agent: true</c> (integration/lab/agent-guest.sh): a Linux whose ext4 vda is
/// mounted at /mnt, with no periodic writeback, so a file written here stays in the guest's page cache until a sync
/// or a file system freeze writes it to the disk.
/// </summary>
public sealed partial class LabVm
{
    /// <summary>Where the guest mounts vda.</summary>
    public const string GuestMountPoint = "/mnt";

    /// <summary>The serial console of an agent VM (its kernel and /init log there).</summary>
    public string ConsoleLogPath => $"{ImagesDirectory}/{Name}-console.log";

    /// <summary>`virsh qemu-agent-command NAME JSON`: the "return" member of the agent's answer.</summary>
    public async Task<JsonNode?> AgentCommandAsync(string execute, object? arguments = null, CancellationToken cancellationToken = default)
    {
        var command = new JsonObject { ["execute"] = execute };
        if (arguments is not null)
        {
            command["arguments"] = JsonSerializer.SerializeToNode(arguments, arguments.GetType());
        }

        var answer = await LabHost.RunAsync("virsh", ["-q", "qemu-agent-command", Name, "--timeout", "10", command.ToJsonString()], cancellationToken);
        return JsonNode.Parse(answer)!["return"];
    }

    /// <summary>guest-fsfreeze-status: "thawed" or "frozen".</summary>
    public async Task<string> FreezeStatusAsync(CancellationToken cancellationToken = default) =>
        (await AgentCommandAsync("guest-fsfreeze-status", cancellationToken: cancellationToken))!.GetValue<string>();

    /// <summary>
    /// Writes <paramref name="content"/> (at most 64 KiB: virsh takes it as one argument) to <paramref name="path"/>
    /// in the guest through the agent (guest-file-open, -write, -close), without a sync.
    /// </summary>
    public async Task WriteGuestFileAsync(string path, byte[] content, CancellationToken cancellationToken = default)
    {
        if (content.Length > 64 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(content), "at most 64 KiB per guest file");
        }

        var handle = (await AgentCommandAsync("guest-file-open", new { path, mode = "w" }, cancellationToken))!.GetValue<long>();
        var written = await AgentCommandAsync("guest-file-write", new Dictionary<string, object> { ["handle"] = handle, ["buf-b64"] = Convert.ToBase64String(content) }, cancellationToken);
        await AgentCommandAsync("guest-file-close", new { handle }, cancellationToken);
        if (written!["count"]!.GetValue<int>() != content.Length)
        {
            throw new LabException($"guest-file-write wrote {written["count"]} of {content.Length} bytes to {path} in {Name}");
        }
    }
}
