using System.Text;
using VirtBackup.Core.Stream;

namespace VirtBackup.Tests.Stream;

/// <summary>The manifest's <c>chain</c>: absent for the unnamed chain (the bytes of format 1 as before), the name otherwise.</summary>
public class ManifestChainTests
{
    private static Manifest Inc => StreamFixtures.Manifest(StreamFixtures.Options(Compression.None), StreamFixtures.TwoDisks(), level: BackupLevel.Inc);

    [Fact]
    public void The_unnamed_chain_writes_no_chain_property_and_reads_back_as_null()
    {
        var json = StreamJson.Serialize(Inc);

        Assert.DoesNotContain("\"chain\"", Encoding.UTF8.GetString(json));
        Assert.Null(StreamJson.DeserializeManifest(json, "virtbackup/manifest.json").Chain);
    }

    [Fact]
    public void A_named_chain_is_written_after_the_chain_id_and_read_back()
    {
        var json = StreamJson.Serialize(Inc with { Chain = "offsite" });

        Assert.Contains("  \"chainId\": \"chain-0001\",\n  \"chain\": \"offsite\",\n  \"createdUtc\"", Encoding.UTF8.GetString(json));
        Assert.Equal("offsite", StreamJson.DeserializeManifest(json, "virtbackup/manifest.json").Chain);
        Assert.Null(StreamRules.ManifestProblem(Inc with { Chain = "offsite" }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("../etc")]
    [InlineData("off site")]
    public void A_manifest_whose_chain_is_no_chain_name_is_refused(string chain)
    {
        Assert.Equal(
            $"chain: '{chain}' is not a chain name (1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit)",
            StreamRules.ManifestProblem(Inc with { Chain = chain }));
    }
}
