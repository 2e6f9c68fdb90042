namespace VirtBackup.IntegrationTests.Libvirt;

[Collection(LabCollection.Name)]
public class DomainStateTests
{
    [Fact(Timeout = 60_000)]
    public async Task Suspend_and_resume_change_the_domain_state_and_report_libvirt_errors()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        using var connection = LibvirtConnection.Open();
        using var domain = connection.LookupByName(vm.Name);
        Assert.Equal(new DomainStateInfo(DomainState.Running, (int)DomainRunningReason.Booted), domain.GetState());

        domain.Suspend();
        Assert.Equal(new DomainStateInfo(DomainState.Paused, (int)DomainPausedReason.User), domain.GetState());
        Assert.Equal(DomainPausedReason.User, domain.GetState().PausedReason);

        domain.Resume();
        Assert.Equal(new DomainStateInfo(DomainState.Running, (int)DomainRunningReason.Unpaused), domain.GetState());

        var error = Assert.Throws<LibvirtException>(domain.Resume);
        Assert.Equal(LibvirtErrorCode.OperationInvalid, error.Code);
        Assert.Equal(LibvirtErrorDomain.Qemu, error.ErrorDomain);
        Assert.Equal("Requested operation is not valid: domain is already running", error.LibvirtMessage);
        Assert.Equal("virDomainResume", error.Operation);
        Assert.Equal(vm.Name, error.DomainName);
        Assert.Equal(
            $"libvirt virDomainResume failed for domain '{vm.Name}': Requested operation is not valid: domain is already running (libvirt error 55)",
            error.Message);
    }

    [Fact(Timeout = 30_000)]
    public async Task Looking_up_an_unknown_domain_raises_DomainNotFound()
    {
        await LabHost.EnsureDaemonsAsync();
        using var connection = LibvirtConnection.Open();
        var name = $"vbt-missing-{Guid.NewGuid():N}";
        var uuid = Guid.NewGuid().ToString();

        var byName = Assert.Throws<DomainNotFoundException>(() => connection.LookupByName(name));
        var byUuid = Assert.Throws<DomainNotFoundException>(() => connection.LookupByUuid(uuid));

        Assert.Equal(LibvirtErrorCode.NoDomain, byName.Code);
        Assert.Equal($"Domain not found: no domain with matching name '{name}'", byName.LibvirtMessage);
        Assert.Equal("virDomainLookupByName", byName.Operation);
        Assert.Equal(name, byName.DomainName);
        Assert.Equal($"Domain not found: no domain with matching uuid '{uuid}'", byUuid.LibvirtMessage);
        Assert.Null(connection.TryLookupByName(name));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_domain_redefined_through_the_layer_starts_stops_and_undefines_with_its_nvram_and_tpm_state()
    {
        await using var vm = await LabVm.CreateAsync(diskSize: "64M");
        using var connection = LibvirtConnection.Open();
        string xml;
        using (var original = connection.LookupByName(vm.Name))
        {
            Assert.True(original.IsPersistent());
            xml = original.GetXml(DomainXmlFlags.Inactive);
            original.Destroy();
            Assert.Equal(new DomainStateInfo(DomainState.Shutoff, (int)DomainShutoffReason.Destroyed), original.GetState());
            Assert.False(original.IsActive());
            original.Undefine(DomainUndefineFlags.KeepNvram | DomainUndefineFlags.KeepTpm);
        }

        Assert.Null(connection.TryLookupByName(vm.Name));
        Assert.True(File.Exists(vm.NvramPath));
        using var domain = connection.Define(xml);
        Assert.Equal((vm.Name, vm.Uuid), (domain.Name, domain.Uuid));
        Assert.False(domain.IsActive());

        domain.Start();
        Assert.True(domain.IsActive());
        Assert.Contains(vm.Name, connection.ListDomainNames());
        domain.Destroy();
        domain.Undefine(DomainUndefineFlags.Nvram | DomainUndefineFlags.Tpm | DomainUndefineFlags.CheckpointsMetadata);

        Assert.DoesNotContain(vm.Name, connection.ListDomainNames());
        Assert.False(File.Exists(vm.NvramPath));
        Assert.False(Directory.Exists($"/var/lib/libvirt/swtpm/{vm.Uuid}"));
        Assert.Throws<DomainNotFoundException>(() => connection.LookupByUuid(vm.Uuid));
    }
}
