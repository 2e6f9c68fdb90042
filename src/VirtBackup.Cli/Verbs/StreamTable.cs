using System.Globalization;
using VirtBackup.Core.Stream;

namespace VirtBackup.CliApp.Verbs;

/// <summary>
/// The text form of <c>list</c>: the manifest as "key  value" lines, then one line per member
/// (stored bytes, content bytes, name), then a summary once the trailer proved the stream complete.
/// </summary>
internal static class StreamTable
{
    public const string Header = "      STORED         SIZE  MEMBER";

    public static IEnumerable<string> Lines(StreamMember member)
    {
        if (member is ManifestMember m)
        {
            foreach (var line in Manifest(m.Manifest))
            {
                yield return line;
            }

            yield return "";
            yield return Header;
        }

        yield return string.Create(CultureInfo.InvariantCulture, $"{member.StoredSize,12} {member.Size,12}  {member.Name}");
    }

    public static string Summary(Trailer trailer) => string.Create(CultureInfo.InvariantCulture,
        $"complete: {trailer.MemberCount} members and the trailer, {trailer.TotalBytes} bytes ({trailer.TotalStoredBytes} stored)");

    public static string Level(BackupLevel level) => level switch
    {
        BackupLevel.Copy => "copy",
        BackupLevel.Full => "full",
        BackupLevel.Diff => "diff",
        _ => "inc",
    };

    private static IEnumerable<string> Manifest(Manifest m)
    {
        yield return Row("domain", m.DomainName);
        yield return Row("uuid", m.DomainUuid);
        yield return Row("level", Level(m.Level));
        yield return Row("checkpoint", m.Checkpoint ?? "-");
        yield return Row("parent", m.ParentCheckpoint ?? "-");
        yield return Row("chain", m.ChainId ?? "-");
        yield return Row("chain-name", m.Chain ?? "-");
        yield return Row("created", m.CreatedUtc.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFFZ", CultureInfo.InvariantCulture));
        yield return Row("tool", m.ToolVersion);
        yield return Row("pause", $"{m.PauseWindowMs} ms");
        yield return Row("freeze", Freeze(m.Freeze));
        var c = m.Compression;
        yield return Row("compression", c.Algorithm == Compression.Zstd
            ? $"zstd level {c.Level}, members of {c.MemberSize} bytes"
            : $"none, members of {c.MemberSize} bytes");
        foreach (var d in m.Disks)
        {
            yield return Row("disk", $"{d.Target} {(d.Format == DiskFormat.Qcow2 ? "qcow2" : "raw")} {d.VirtualSize} bytes{(d.Excluded ? " (excluded)" : "")}");
        }

        yield return Row("nvram", m.NvramPresent ? "yes" : "no");
        yield return Row("tpm", m.Tpm.Present
            ? m.Tpm.Version + (m.Tpm.EncryptionSecretUuid is { } s ? $", encrypted with secret {s}" : "")
            : "no");
        foreach (var w in m.Warnings)
        {
            yield return Row("warning", w);
        }
    }

    private static string Freeze(FreezeState state) => state switch
    {
        FreezeState.Frozen => "frozen",
        FreezeState.NotFrozen => "not-frozen",
        FreezeState.NoAgent => "no-agent",
        _ => "off",
    };

    private static string Row(string key, string value) => string.Create(CultureInfo.InvariantCulture, $"{key,-12} {value}");
}
