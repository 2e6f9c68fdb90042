using System.Buffers.Binary;
using System.Text;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Recovery;

/// <summary>Option haggling, server side: one method per option; anything malformed gets NBD_REP_ERR_INVALID.</summary>
internal sealed partial class NbdServerSession
{
    /// <summary>The id of <c>base:allocation</c> once NBD_OPT_SET_META_CONTEXT selected it.</summary>
    private const uint BaseAllocationId = 1;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private bool _baseAllocation;
    private string? _metaContextExport;

    /// <summary>Answers one option; Done with the export when transmission begins, Done with null to hang up.</summary>
    private async Task<(bool Done, INbdExport? Export)> HandleOptionAsync(uint option, byte[] data)
    {
        switch (option)
        {
            case OptExportName:
                return (true, await ExportNameAsync(data).ConfigureAwait(false));
            case OptAbort:
                await AckAsync(option).ConfigureAwait(false);
                return (true, null);
            case OptList when data.Length != 0:
                await ErrorAsync(option, RepErrInvalid, "NBD_OPT_LIST takes no data").ConfigureAwait(false);
                break;
            case OptList:
                await ListAsync().ConfigureAwait(false);
                break;
            case OptStructuredReply when data.Length != 0:
                await ErrorAsync(option, RepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data").ConfigureAwait(false);
                break;
            case OptStructuredReply:
                _structured = true;
                await AckAsync(option).ConfigureAwait(false);
                break;
            case OptInfo or OptGo:
                var export = await InfoAsync(option, data).ConfigureAwait(false);
                if (option == OptGo && export is not null)
                {
                    if (_metaContextExport != export.Name)
                    {
                        _baseAllocation = false; // contexts were negotiated for another export
                    }

                    return (true, export);
                }

                break;
            case OptListMetaContext or OptSetMetaContext:
                await MetaContextAsync(option, data).ConfigureAwait(false);
                break;
            case OptStartTls:
                await ErrorAsync(option, RepErrPolicy, "this server does not offer TLS: reach it over a unix socket or a trusted network").ConfigureAwait(false);
                break;
            default:
                await ErrorAsync(option, RepErrUnsup, $"{OptionName(option)} is not supported").ConfigureAwait(false);
                break;
        }

        return (false, null);
    }

    private async Task<INbdExport?> ExportNameAsync(byte[] data)
    {
        var export = TryDecode(data, out var name) ? FindExport(name) : null;
        if (export is null)
        {
            return null; // the protocol has no way to refuse here but hanging up
        }

        var reply = new byte[_noZeroes ? 10 : 134];
        BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)export.Size);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), TransmissionFlags);
        await SendAsync(reply).ConfigureAwait(false);
        _baseAllocation = false;
        return export;
    }

    private async Task ListAsync()
    {
        foreach (var export in exports)
        {
            var name = Encoding.UTF8.GetBytes(export.Name);
            var payload = new byte[4 + name.Length];
            BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)name.Length);
            name.CopyTo(payload, 4);
            await ReplyOptionAsync(OptList, RepServer, payload).ConfigureAwait(false);
        }

        await AckAsync(OptList).ConfigureAwait(false);
    }

    /// <summary>NBD_OPT_INFO and NBD_OPT_GO: the export's size, flags, block sizes (and name, description when asked).</summary>
    private async Task<INbdExport?> InfoAsync(uint option, byte[] data)
    {
        var reader = new PayloadReader(data);
        if (!reader.TryString(out var name) || !reader.TryUInt16(out var count) || reader.Remaining != count * 2)
        {
            await ErrorAsync(option, RepErrInvalid, $"malformed {OptionName(option)} request").ConfigureAwait(false);
            return null;
        }

        var requested = new List<ushort>();
        for (var i = 0; i < count; i++)
        {
            reader.TryUInt16(out var info);
            requested.Add(info);
        }

        var export = FindExport(name);
        if (export is null)
        {
            await ErrorAsync(option, RepErrUnknown, $"no export named '{name}' (exports: {string.Join(", ", exports.Select(e => e.Name))})").ConfigureAwait(false);
            return null;
        }

        var info0 = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info0, InfoExport);
        BinaryPrimitives.WriteUInt64BigEndian(info0.AsSpan(2), (ulong)export.Size);
        BinaryPrimitives.WriteUInt16BigEndian(info0.AsSpan(10), TransmissionFlags);
        await ReplyOptionAsync(option, RepInfo, info0).ConfigureAwait(false);

        var sizes = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(sizes, InfoBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(2), 1);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(6), DefaultPreferredBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(10), limits.MaxRead);
        await ReplyOptionAsync(option, RepInfo, sizes).ConfigureAwait(false);

        if (requested.Contains(InfoName))
        {
            await ReplyOptionAsync(option, RepInfo, (byte[])[0, (byte)InfoName, .. Encoding.UTF8.GetBytes(export.Name)]).ConfigureAwait(false);
        }

        if (requested.Contains(InfoDescription))
        {
            await ReplyOptionAsync(option, RepInfo, (byte[])[0, (byte)InfoDescription, .. Encoding.UTF8.GetBytes(export.Description)]).ConfigureAwait(false);
        }

        await AckAsync(option).ConfigureAwait(false);
        return export;
    }

    /// <summary>NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: the one context served is <c>base:allocation</c>.</summary>
    private async Task MetaContextAsync(uint option, byte[] data)
    {
        if (!_structured)
        {
            await ErrorAsync(option, RepErrInvalid, "metadata contexts need structured replies (NBD_OPT_STRUCTURED_REPLY) first").ConfigureAwait(false);
            return;
        }

        var reader = new PayloadReader(data);
        var queries = new List<string>();
        uint count = 0;
        var ok = reader.TryString(out var name) && reader.TryUInt32(out count) && count <= 1024;
        for (uint i = 0; ok && i < count; i++)
        {
            ok = reader.TryString(out var query);
            queries.Add(query);
        }

        if (!ok || reader.Remaining != 0)
        {
            await ErrorAsync(option, RepErrInvalid, $"malformed {OptionName(option)} request").ConfigureAwait(false);
            return;
        }

        if (FindExport(name) is not { } export)
        {
            await ErrorAsync(option, RepErrUnknown, $"no export named '{name}'").ConfigureAwait(false);
            return;
        }

        var list = option == OptListMetaContext;
        var selected = list ? queries.Count == 0 || queries.Any(q => q is BaseAllocation or "base:") : queries.Contains(BaseAllocation);
        if (!list)
        {
            _baseAllocation = selected;
            _metaContextExport = export.Name;
        }

        if (selected)
        {
            var reply = new byte[4 + BaseAllocation.Length];
            BinaryPrimitives.WriteUInt32BigEndian(reply, list ? 0 : BaseAllocationId);
            Encoding.ASCII.GetBytes(BaseAllocation, reply.AsSpan(4));
            await ReplyOptionAsync(option, RepMetaContext, reply).ConfigureAwait(false);
        }

        await AckAsync(option).ConfigureAwait(false);
    }

    private static ushort TransmissionFlags => (ushort)(FlagHasFlags | FlagReadOnly | FlagCanMultiConn | FlagSendFlush | FlagSendCache);

    private static bool TryDecode(ReadOnlySpan<byte> bytes, out string text)
    {
        try
        {
            text = StrictUtf8.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }
    }

    /// <summary>Reads the fields of an option's payload, refusing lengths that run past its end.</summary>
    private ref struct PayloadReader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

        public readonly int Remaining => _rest.Length;

        public bool TryUInt16(out ushort value)
        {
            var ok = TryTake(2, out var field);
            value = ok ? BinaryPrimitives.ReadUInt16BigEndian(field) : (ushort)0;
            return ok;
        }

        public bool TryUInt32(out uint value)
        {
            var ok = TryTake(4, out var field);
            value = ok ? BinaryPrimitives.ReadUInt32BigEndian(field) : 0;
            return ok;
        }

        /// <summary>A 32-bit length, then that many bytes of UTF-8 (at most NBD's 4096).</summary>
        public bool TryString(out string value)
        {
            value = "";
            if (!TryUInt32(out var length) || length > MaxStringLength || length > _rest.Length)
            {
                return false;
            }

            TryTake((int)length, out var text);
            return TryDecode(text, out value);
        }

        /// <summary>The next <paramref name="length"/> bytes, when that many are left.</summary>
        private bool TryTake(int length, out ReadOnlySpan<byte> field)
        {
            if (_rest.Length < length)
            {
                field = default;
                return false;
            }

            field = _rest[..length];
            _rest = _rest[length..];
            return true;
        }
    }
}
