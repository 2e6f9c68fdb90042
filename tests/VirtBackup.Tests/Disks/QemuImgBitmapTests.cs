using VirtBackup.Core.Hosts.Local;
using VirtBackup.Tests.Nbd.Peers;

namespace VirtBackup.Tests.Disks;

/// <summary>The bitmap operations a shut-off domain's checkpoints are made of, on real images with the real qemu-img.</summary>
public class QemuImgBitmapTests
{
    [Fact(Timeout = 60_000)]
    public async Task Bitmaps_added_to_an_image_are_listed_recording_a_disabled_one_is_not_and_a_removed_one_is_gone()
    {
        using var dir = new TempDir();
        var image = dir.File("a.qcow2");
        await Tool.CreateQcow2Async(image, "4M");

        await QemuImg.AddBitmapAsync(image, "virtbackup-c-0001", CancellationToken.None);
        await QemuImg.AddBitmapAsync(image, "virtbackup-c-0002", CancellationToken.None);
        await Tool.RunAsync("qemu-img", "bitmap", "--disable", image, "virtbackup-c-0002");
        var both = await QemuImg.InfoAsync(image, forceShare: false, CancellationToken.None);
        await QemuImg.RemoveBitmapAsync(image, "virtbackup-c-0001", CancellationToken.None);
        var one = await QemuImg.InfoAsync(image, forceShare: false, CancellationToken.None);

        Assert.Equal([new ImageBitmap("virtbackup-c-0001", true, false), new ImageBitmap("virtbackup-c-0002", false, false)], both.Bitmaps);
        Assert.Equal([new ImageBitmap("virtbackup-c-0002", false, false)], one.Bitmaps);
        Assert.Null(one.Bitmap("virtbackup-c-0001"));
    }

    [Fact]
    public void A_bitmap_a_crashed_qemu_left_in_use_is_reported_in_use()
    {
        const string json = """
            {"virtual-size": 67108864, "filename": "x.qcow2", "format": "qcow2", "actual-size": 200704,
             "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "bitmaps": [
               {"flags": ["in-use", "auto"], "name": "virtbackup-c-0001", "granularity": 65536},
               {"flags": [], "name": "other", "granularity": 65536}]}}}
            """;

        var info = QemuImg.ParseInfo(json);

        Assert.Equal([new ImageBitmap("virtbackup-c-0001", true, true), new ImageBitmap("other", false, false)], info.Bitmaps);
    }

    [Fact]
    public void A_redefinition_names_the_parent_and_each_disk_with_its_bitmap_or_none()
    {
        var xml = CheckpointXml.Redefinition("virtbackup-c-0002", "virtbackup-c-0001", DateTimeOffset.FromUnixTimeSeconds(1795806000), ["vdb", "vda"], ["sda"]);

        Assert.Equal(
            "<domaincheckpoint><name>virtbackup-c-0002</name><parent><name>virtbackup-c-0001</name></parent><creationTime>1795806000</creationTime>"
            + "<disks><disk name=\"sda\" checkpoint=\"no\" /><disk name=\"vda\" checkpoint=\"bitmap\" bitmap=\"virtbackup-c-0002\" />"
            + "<disk name=\"vdb\" checkpoint=\"bitmap\" bitmap=\"virtbackup-c-0002\" /></disks></domaincheckpoint>",
            xml);
    }
}
