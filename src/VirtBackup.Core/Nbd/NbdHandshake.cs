using System.Buffers.Binary;
using System.Text;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// The fixed-newstyle handshake as named steps, one small method each. The caller decides the order:
/// greeting, client flags, STARTTLS when asked, then options (structured replies, meta contexts, list, go).
/// Every server reply is checked against what was asked. The calls block; the client runs them off the
/// caller's thread and closes the socket when its deadline or cancellation strikes.
/// </summary>
internal sealed partial class NbdHandshake(NbdTransport transport, NbdSocketReader reader)
{
    private const int MaxOptionReplyLength = 64 * 1024;
    private bool _noZeroes;

    /// <summary>Step 1: NBDMAGIC, IHAVEOPT and the handshake flags.</summary>
    public void ReadGreeting()
    {
        var greeting = reader.Read(16);
        var passwd = BinaryPrimitives.ReadUInt64BigEndian(greeting);
        var magic = BinaryPrimitives.ReadUInt64BigEndian(greeting[8..]);
        if (passwd != InitPasswd)
        {
            throw Violation("handshake", $"the greeting starts with 0x{passwd:x16} instead of NBDMAGIC (is this an NBD server?)");
        }

        if (magic == OldstyleMagic)
        {
            throw new NbdException("NBD handshake: the server uses oldstyle negotiation, which is not supported (use a newstyle server or port).", "handshake");
        }

        if (magic != OptsMagic)
        {
            throw Violation("handshake", $"unknown negotiation magic 0x{magic:x16} (expected IHAVEOPT)");
        }

        var flags = BinaryPrimitives.ReadUInt16BigEndian(reader.Read(2));
        if ((flags & FlagFixedNewstyle) == 0)
        {
            throw new NbdException("NBD handshake: the server does not support fixed newstyle negotiation, which this client requires.", "handshake");
        }

        _noZeroes = (flags & FlagNoZeroes) != 0;
    }

    /// <summary>Step 2: our client flags (FIXED_NEWSTYLE, and NO_ZEROES when the server offered it).</summary>
    public void SendClientFlags()
    {
        var flags = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, ClientFlagFixedNewstyle | (_noZeroes ? ClientFlagNoZeroes : 0));
        transport.Send(flags);
    }

    /// <summary>Step 3: NBD_OPT_STRUCTURED_REPLY; false when the server does not support it.</summary>
    public bool NegotiateStructuredReplies()
    {
        SendOption(OptStructuredReply, []);
        var reply = ReadOptionReply(OptStructuredReply);
        return reply.Type switch
        {
            RepAck when reply.Data.Length == 0 => true,
            RepAck => throw Violation(OptStructuredReply, $"NBD_REP_ACK with {reply.Data.Length} bytes of data"),
            RepErrUnsup => false,
            _ when (reply.Type & RepFlagError) != 0 => throw Refused(OptStructuredReply, reply),
            _ => throw Violation(OptStructuredReply, $"unexpected reply type {reply.Type}"),
        };
    }

    /// <summary>Step 4: NBD_OPT_SET_META_CONTEXT; returns the id the server assigned to each requested name.</summary>
    public IReadOnlyDictionary<string, uint> SetMetaContexts(string exportName, IReadOnlyList<string> contexts)
    {
        var payload = new List<byte>();
        AppendString32(payload, exportName);
        AppendUInt32(payload, (uint)contexts.Count);
        foreach (var context in contexts)
        {
            AppendString32(payload, context);
        }

        SendOption(OptSetMetaContext, payload.ToArray());

        var assigned = new Dictionary<string, uint>(StringComparer.Ordinal);
        while (true)
        {
            var reply = ReadOptionReply(OptSetMetaContext);
            if (reply.Type == RepAck)
            {
                break;
            }

            if ((reply.Type & RepFlagError) != 0)
            {
                throw Refused(OptSetMetaContext, reply);
            }

            if (reply.Type != RepMetaContext || reply.Data.Length < 5)
            {
                throw Violation(OptSetMetaContext, $"unexpected reply type {reply.Type} with {reply.Data.Length} bytes");
            }

            var id = BinaryPrimitives.ReadUInt32BigEndian(reply.Data);
            var name = DecodeString(OptSetMetaContext, reply.Data.AsSpan(4));
            if (!contexts.Contains(name, StringComparer.Ordinal))
            {
                throw Violation(OptSetMetaContext, $"the server selected context '{name}', which was not requested");
            }

            if (assigned.ContainsKey(name) || assigned.ContainsValue(id))
            {
                throw Violation(OptSetMetaContext, $"context '{name}' (id {id}) was announced twice or its id is not unique");
            }

            assigned[name] = id;
        }

        var missing = contexts.Where(c => !assigned.ContainsKey(c)).Distinct().ToList();
        if (missing.Count > 0)
        {
            var offered = assigned.Count == 0 ? "none of them" : string.Join(", ", assigned.Keys);
            throw new NbdException(
                $"NBD_OPT_SET_META_CONTEXT: the server does not provide metadata context {string.Join(", ", missing.Select(m => $"'{m}'"))} " +
                $"for export '{exportName}' (it accepted: {offered}). A qemu:dirty-bitmap:NAME context needs a bitmap NAME that exists " +
                "and is exported (qemu-nbd -B NAME, or 'bitmaps' of block-export-add).",
                "NBD_OPT_SET_META_CONTEXT");
        }

        return assigned;
    }

    /// <summary>Step 5: NBD_OPT_LIST, the exports the server announces.</summary>
    public IReadOnlyList<NbdExportInfo> ListExports()
    {
        SendOption(OptList, []);
        var exports = new List<NbdExportInfo>();
        while (true)
        {
            var reply = ReadOptionReply(OptList);
            if (reply.Type == RepAck)
            {
                return exports;
            }

            if ((reply.Type & RepFlagError) != 0)
            {
                throw Refused(OptList, reply);
            }

            if (reply.Type != RepServer || reply.Data.Length < 4)
            {
                throw Violation(OptList, $"unexpected reply type {reply.Type} with {reply.Data.Length} bytes");
            }

            var nameLength = BinaryPrimitives.ReadUInt32BigEndian(reply.Data);
            if (nameLength > reply.Data.Length - 4)
            {
                throw Violation(OptList, $"export name length {nameLength} exceeds the reply length {reply.Data.Length}");
            }

            var name = DecodeString(OptList, reply.Data.AsSpan(4, (int)nameLength));
            var description = DecodeString(OptList, reply.Data.AsSpan(4 + (int)nameLength));
            exports.Add(new NbdExportInfo(name, description));
        }
    }

    /// <summary>Ends option haggling without entering transmission (after a list).</summary>
    public void Abort()
    {
        SendOption(OptAbort, []);
        transport.ShutdownSend();
    }

    private void SendOption(uint option, byte[] data)
    {
        var message = new byte[NbdWire.OptionHeaderSize + data.Length];
        NbdWire.WriteOptionHeader(message, option, (uint)data.Length);
        data.CopyTo(message, NbdWire.OptionHeaderSize);
        transport.Send(message);
    }

    private OptionReply ReadOptionReply(uint option)
    {
        var header = reader.Read(OptionReplyHeaderSize);
        var magic = BinaryPrimitives.ReadUInt64BigEndian(header);
        var echoed = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
        var type = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        if (magic != OptionReplyMagic)
        {
            throw Violation(option, $"option reply magic 0x{magic:x16} instead of 0x{OptionReplyMagic:x}");
        }

        if (echoed != option)
        {
            throw Violation(option, $"the reply is for {OptionName(echoed)}, not for the option sent");
        }

        if (length > MaxOptionReplyLength)
        {
            throw Violation(option, $"option reply length {length} is implausibly large");
        }

        var data = reader.Read((int)length).ToArray();
        return new OptionReply(type, data);
    }

    private readonly record struct OptionReply(uint Type, byte[] Data);

    private NbdException Refused(uint option, OptionReply reply)
    {
        if (reply.Type == RepErrTlsReqd)
        {
            return TlsRequired(option, reply);
        }

        var message = Encoding.UTF8.GetString(reply.Data).Trim();
        var detail = message.Length == 0 ? "" : $": {message}";
        return new NbdException($"{OptionName(option)} was refused by the server with {OptionErrorName(reply.Type)}{detail}.", OptionName(option));
    }

    private static NbdException Violation(uint option, string problem) => Violation(OptionName(option), problem);

    private static NbdException Violation(string command, string problem) =>
        NbdException.ServerViolation(command, null, null, problem);

    private static string DecodeString(uint option, ReadOnlySpan<byte> bytes)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Violation(option, "a string in the reply is not valid UTF-8");
        }
    }

    private static void AppendUInt32(List<byte> target, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        target.AddRange(bytes);
    }

    private static void AppendString32(List<byte> target, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        if (bytes.Length > MaxStringLength)
        {
            throw new ArgumentException($"'{value[..32]}...' is longer than the NBD limit of {MaxStringLength} bytes.");
        }

        AppendUInt32(target, (uint)bytes.Length);
        target.AddRange(bytes);
    }
}
