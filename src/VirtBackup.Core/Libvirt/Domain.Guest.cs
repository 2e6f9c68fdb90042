using System.Runtime.InteropServices;
using static VirtBackup.Core.Libvirt.LibvirtErrors;

namespace VirtBackup.Core.Libvirt;

public sealed partial class Domain
{
    /// <summary>Agent timeouts with a special meaning in <see cref="QemuAgentCommand"/> (else seconds).</summary>
    public const int AgentTimeoutBlock = -2, AgentTimeoutDefault = -1, AgentTimeoutNoWait = 0;

    /// <summary>
    /// Freezes the guest's file systems through the QEMU guest agent (<c>virDomainFSFreeze</c>): all of
    /// them, or only <paramref name="mountpoints"/>. Returns how many were frozen.
    /// </summary>
    public int FSFreeze(IReadOnlyList<string>? mountpoints = null) => FreezeOrThaw(mountpoints, freeze: true);

    /// <summary>Thaws what <see cref="FSFreeze"/> froze (<c>virDomainFSThaw</c>). Returns how many were thawed.</summary>
    public int FSThaw(IReadOnlyList<string>? mountpoints = null) => FreezeOrThaw(mountpoints, freeze: false);

    /// <summary>
    /// Sends a JSON command to the QEMU guest agent (<c>virDomainQemuAgentCommand</c>) and returns its
    /// JSON answer. <paramref name="timeoutSeconds"/> is seconds or one of the AgentTimeout constants.
    /// </summary>
    public string QemuAgentCommand(string json, int timeoutSeconds = AgentTimeoutDefault) =>
        TakeString(LibvirtNative.virDomainQemuAgentCommand(_handle, json, timeoutSeconds, 0), "virDomainQemuAgentCommand", Name);

    /// <summary>
    /// Whether the guest agent answers <c>guest-ping</c> within <paramref name="timeoutSeconds"/>. False
    /// when no agent channel is configured, the agent is not connected, or it does not answer in time.
    /// </summary>
    public bool IsGuestAgentResponsive(int timeoutSeconds = 5)
    {
        try
        {
            QemuAgentCommand("""{"execute":"guest-ping"}""", timeoutSeconds);
            return true;
        }
        catch (LibvirtException e) when (e.Code is LibvirtErrorCode.AgentUnresponsive or LibvirtErrorCode.ArgumentUnsupported
                                             or LibvirtErrorCode.OperationInvalid or LibvirtErrorCode.OperationTimeout)
        {
            // These are libvirt's ways of saying "no agent here or it does not answer": the question is answered.
            return false;
        }
    }

    /// <summary>
    /// Sends a command to the QEMU monitor (<c>virDomainQemuMonitorCommand</c>): QMP JSON, or an HMP
    /// command line when <paramref name="hmp"/> is true. For tests and diagnostics: libvirt marks the
    /// domain tainted.
    /// </summary>
    public string QemuMonitorCommand(string command, bool hmp = false)
    {
        Check(LibvirtNative.virDomainQemuMonitorCommand(_handle, command, out var result, hmp ? 1u : 0u),
            "virDomainQemuMonitorCommand", Name);
        return TakeString(result, "virDomainQemuMonitorCommand", Name);
    }

    private unsafe int FreezeOrThaw(IReadOnlyList<string>? mountpoints, bool freeze)
    {
        var paths = new nint[mountpoints?.Count ?? 0];
        try
        {
            for (var i = 0; i < paths.Length; i++)
            {
                paths[i] = Marshal.StringToCoTaskMemUTF8(mountpoints![i]);
            }

            fixed (nint* array = paths)
            {
                var list = paths.Length == 0 ? null : array;
                return freeze
                    ? Check(LibvirtNative.virDomainFSFreeze(_handle, list, (uint)paths.Length, 0), "virDomainFSFreeze", Name)
                    : Check(LibvirtNative.virDomainFSThaw(_handle, list, (uint)paths.Length, 0), "virDomainFSThaw", Name);
            }
        }
        finally
        {
            foreach (var path in paths)
            {
                Marshal.FreeCoTaskMem(path);
            }
        }
    }
}
