namespace VirtBackup.Core.Stream;

/// <summary>
/// Tar headers: a member is one regular-file header of any accepted flavour (ustar, GNU, pax), optionally preceded
/// by at most one of each extension entry another tar tool may write for it: a GNU long name ('L'), a pax extended
/// header ('x') and a pax global header ('g'). Mode, owner, times and other metadata are not checked against
/// anything (a repack changes them, and the trailer proves what matters: names, order, sizes, content); the
/// structure is (checksum, magic, every numeric field, the extension records, size caps before any allocation).
/// </summary>
public sealed partial class BackupStreamReader
{
    /// <summary>Largest GNU long name entry read (member names are at most 100 bytes; this leaves room for a clear message).</summary>
    internal const int MaxLongNameSize = 1024;

    /// <summary>Largest pax header read (GNU tar's times, xattrs and ACLs fit many times over).</summary>
    internal const int MaxPaxHeaderSize = 64 * 1024;

    /// <summary>A member's header: its name and size after any extension entries, and where its own header starts.</summary>
    private readonly record struct MemberHeader(string Name, bool NameIsPrintableAscii, long Size, long At);

    /// <summary>Reads the next member's headers; throws <see cref="StreamFormatException"/> for anything else.</summary>
    private async Task<MemberHeader> ReadMemberHeaderAsync(CancellationToken cancellationToken)
    {
        string? longName = null;
        PaxOverrides? pax = null;
        var global = false;
        string? pending = null; // the last extension entry read, while no member header followed it yet
        while (true)
        {
            var headerAt = _position;
            var raw = await ReadHeaderBlockAsync(headerAt, pending, cancellationToken).ConfigureAwait(false);
            var who = raw.NameIsPrintableAscii && raw.Name.Length > 0 ? raw.Name : After();
            if (!raw.ChecksumOk)
            {
                throw Fail(who, headerAt == 0
                    ? "the input is not a VirtBackup tar stream (no valid tar header at the start)"
                    : "tar header checksum mismatch (corrupt header)", headerAt);
            }

            if (raw.Flavour == TarFlavour.Unknown)
            {
                throw Fail(who, "not a ustar, GNU or pax tar header (unknown magic)", headerAt);
            }

            if (raw.Size < 0)
            {
                throw Fail(who, "tar header field 'size' is not an octal or base-256 number", headerAt);
            }

            if (raw.BadNumericField is { } field)
            {
                throw Fail(who, $"tar header field '{field}' is not an octal or base-256 number", headerAt);
            }

            switch (raw.TypeFlag)
            {
                case TarHeader.GnuLongNameType:
                    if (longName is not null)
                    {
                        throw Fail(who, "a second GNU long name for one member", headerAt);
                    }

                    CheckSize(who, raw.Size, MaxLongNameSize);
                    var nameBytes = await ReadContentAsync(who, raw.Size, cancellationToken).ConfigureAwait(false);
                    if (TarHeader.LongNameProblem(nameBytes, out var name) is { } nameProblem)
                    {
                        throw Fail(who, nameProblem, headerAt);
                    }

                    longName = name;
                    break;
                case TarHeader.PaxExtendedType or TarHeader.PaxGlobalType:
                    var isGlobal = raw.TypeFlag == TarHeader.PaxGlobalType;
                    if (isGlobal ? global : pax is not null)
                    {
                        throw Fail(who, $"a second {TarHeader.DescribeType(raw.TypeFlag)} for one member", headerAt);
                    }

                    CheckSize(who, raw.Size, MaxPaxHeaderSize);
                    var records = await ReadContentAsync(who, raw.Size, cancellationToken).ConfigureAwait(false);
                    if (TarHeader.PaxProblem(records, isGlobal, out var overrides) is { } paxProblem)
                    {
                        throw Fail(who, paxProblem, headerAt);
                    }

                    if (isGlobal)
                    {
                        global = true;
                    }
                    else
                    {
                        pax = overrides;
                    }

                    break;
                case TarHeader.RegularFileType or TarHeader.OldRegularFileType:
                    var extended = pax?.Path ?? longName;
                    if (pax?.Path is { } p && longName is not null && p != longName)
                    {
                        throw Fail(p, $"the pax path and the GNU long name '{longName}' differ", headerAt);
                    }

                    var member = new MemberHeader(extended ?? raw.Name, extended is not null || raw.NameIsPrintableAscii, pax?.Size ?? raw.Size, headerAt);
                    if (raw.HasLinkName)
                    {
                        throw Fail(member.NameIsPrintableAscii ? member.Name : who, "a regular file with a link name", headerAt);
                    }

                    return member;
                default:
                    throw Fail(who, $"is a {TarHeader.DescribeType(raw.TypeFlag)} entry (type '{(char)raw.TypeFlag}'); only regular files are allowed", headerAt);
            }
            pending = $"{TarHeader.DescribeType(raw.TypeFlag)} '{who}'";
        }
    }

    /// <summary>Reads one header block, refusing the end of the input or of the archive where a header must be.</summary>
    private async Task<TarHeader.RawHeader> ReadHeaderBlockAsync(long headerAt, string? pending, CancellationToken cancellationToken)
    {
        var got = await ReadUpToAsync(_block, cancellationToken).ConfigureAwait(false);
        if (got == 0)
        {
            throw pending is null
                ? Fail(ExpectedNext(), $"missing: the stream ends at byte {headerAt}, after '{_lastMember ?? "nothing"}', without a trailer: it is truncated", headerAt)
                : Fail(ExpectedNext(), $"missing: the stream ends at byte {headerAt}, after the {pending}: it is truncated", headerAt);
        }

        if (got < TarHeader.BlockSize)
        {
            _block.AsSpan(got).Clear();
            var partial = TarHeader.Inspect(_block);
            var truncated = got >= TarHeader.NameLength && partial.NameIsPrintableAscii && partial.Name.Length > 0 ? partial.Name : After();
            throw Fail(truncated, $"the stream ends inside a tar header (at byte {headerAt}, {got} of 512 bytes): it is truncated", headerAt);
        }
        if (TarHeader.IsZeroBlock(_block))
        {
            throw pending is null
                ? Fail(ExpectedNext(), $"missing: an end-of-archive block at byte {headerAt}, after '{_lastMember ?? "nothing"}', comes before the trailer: the stream is incomplete", headerAt)
                : Fail(ExpectedNext(), $"missing: an end-of-archive block at byte {headerAt} follows the {pending} instead of its member", headerAt);
        }

        return TarHeader.Inspect(_block);
    }
}
