namespace VirtBackup.Tests.Stream;

public class MemberNamesTests
{
    [Fact]
    public void Names_are_built_in_the_documented_forms()
    {
        Assert.Equal("state/nvram/win11_VARS.fd", MemberNames.Nvram("win11_VARS.fd"));
        Assert.Equal("state/tpm/tpm2/tpm2-00.permall", MemberNames.TpmFile("tpm2/tpm2-00.permall"));
        Assert.Equal("disks/vda/extents.json", MemberNames.DiskMap("vda", 1));
        Assert.Equal("disks/vda/extents.txt", MemberNames.DiskMap("vda", 2));
        Assert.Equal("disks/vda/0000000000400000.zst", MemberNames.DiskData("vda", 4 * 1024 * 1024, Compression.Zstd));
        Assert.Equal("disks/sdb/7fffffffffffffff.raw", MemberNames.DiskData("sdb", long.MaxValue, Compression.None));
    }

    [Theory]
    [InlineData("virtbackup/manifest.json", MemberKind.Manifest, null, null, 0L)]
    [InlineData("virtbackup/domain.xml", MemberKind.DomainXml, null, null, 0L)]
    [InlineData("virtbackup/trailer.json", MemberKind.Trailer, null, null, 0L)]
    [InlineData("state/nvram/OVMF_VARS.secboot.fd", MemberKind.Nvram, null, "OVMF_VARS.secboot.fd", 0L)]
    [InlineData("state/tpm/tpm2/.lock", MemberKind.TpmFile, null, "tpm2/.lock", 0L)]
    [InlineData("disks/hdc/extents.json", MemberKind.DiskMap, "hdc", null, 0L)]
    [InlineData("disks/hdc/extents.txt", MemberKind.DiskMap, "hdc", null, 0L)]
    [InlineData("disks/vda/00000000000fec78.zst", MemberKind.DiskData, "vda", null, 0xfec78L)]
    public void Valid_names_parse_into_their_parts(string name, MemberKind kind, string? target, string? path, long offset)
    {
        var parsed = MemberNames.Parse(name);

        Assert.Equal(new ParsedMemberName(kind, name, target, path, offset, kind == MemberKind.DiskData ? Compression.Zstd : null), parsed);
    }

    [Theory]
    [InlineData("virtbackup/other.json", "unknown top-level name (expected virtbackup/, state/nvram/, state/tpm/ or disks/)")]
    [InlineData("state/nvram/a/b", "bad NVRAM file name: it contains '/'")]
    [InlineData("state/tpm/a/./b", "name has a '.' segment")]
    [InlineData("disks/vda/0000000000000000.ZST", "unknown disk member (expected extents.json, extents.txt, extents-<16 hex digits>.txt or <16 hex digits>.zst/.raw)")]
    [InlineData("disks/vda/00000000000000AB.zst", "disk data offset must be 16 lowercase hex digits")]
    [InlineData("disks/vda/8000000000000000.zst", "disk data offset out of range")]
    [InlineData("disks/.vda/extents.json", "bad disk target: it must start with an ASCII letter or digit")]
    [InlineData("disks/vda/x/extents.json", "disk members are disks/<target>/<file>")]
    [InlineData("state/tpm/a b", "name contains character '\\u0020'")]
    [InlineData("state/tpm/caf\u00e9", "name contains character '\\u00e9'")]
    [InlineData("", "empty member name")]
    public void Invalid_names_are_refused_with_the_reason(string name, string problem)
    {
        Assert.False(MemberNames.TryParse(name, out _, out var actual));
        Assert.Equal(problem, actual);
    }

    [Fact]
    public void Names_longer_than_the_ustar_name_field_are_refused_by_the_builder()
    {
        var e = Assert.Throws<ArgumentException>(() => MemberNames.TpmFile(new string('a', 91)));

        Assert.StartsWith("Member name 'state/tpm/aaaa", e.Message);
    }
}
