using System.Text.Json;

namespace VirtBackup.IntegrationTests.Libvirt;

[Collection(LabCollection.Name)]
public class GuestTests
{
    [Fact(Timeout = 60_000)]
    public async Task Without_a_guest_agent_freezing_fails_with_libvirt_s_message_and_the_agent_counts_as_unresponsive()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);

        var freeze = Assert.Throws<LibvirtException>(() => domain.FSFreeze());
        var freezeRoot = Assert.Throws<LibvirtException>(() => domain.FSFreeze(["/", "/boot"]));
        var thaw = Assert.Throws<LibvirtException>(() => domain.FSThaw());
        var ping = Assert.Throws<LibvirtException>(() => domain.QemuAgentCommand("""{"execute":"guest-ping"}""", 1));

        Assert.Equal(LibvirtErrorCode.ArgumentUnsupported, freeze.Code);
        Assert.Equal("argument unsupported: QEMU guest agent is not configured", freeze.LibvirtMessage);
        Assert.Equal("virDomainFSFreeze", freeze.Operation);
        Assert.Equal(freeze.LibvirtMessage, freezeRoot.LibvirtMessage);
        Assert.Equal(("virDomainFSThaw", LibvirtErrorCode.ArgumentUnsupported), (thaw.Operation, thaw.Code));
        Assert.Equal(("virDomainQemuAgentCommand", LibvirtErrorCode.ArgumentUnsupported), (ping.Operation, ping.Code));
        Assert.False(domain.IsGuestAgentResponsive(timeoutSeconds: 1));
        Assert.Equal(DomainState.Running, domain.GetState().State);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_qemu_monitor_answers_hmp_and_qmp_commands()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);

        var blocks = domain.QemuMonitorCommand("info block", hmp: true);
        using var status = JsonDocument.Parse(domain.QemuMonitorCommand("""{"execute":"query-status"}"""));

        Assert.Contains($"libvirt-1-format: {vm.DiskPath("vda")} (qcow2)", blocks);
        Assert.Equal("running", status.RootElement.GetProperty("return").GetProperty("status").GetString());
    }
}
