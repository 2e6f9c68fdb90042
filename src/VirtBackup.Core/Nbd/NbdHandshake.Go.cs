using System.Buffers.Binary;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

internal sealed partial class NbdHandshake
{
    /// <summary>
    /// Step 6: NBD_OPT_GO with the export name, asking for NBD_INFO_BLOCK_SIZE; enters transmission.
    /// Falls back to NBD_OPT_EXPORT_NAME when the server does not know NBD_OPT_GO.
    /// </summary>
    public NbdExportDetails Go(string exportName)
    {
        var payload = new List<byte>();
        AppendString32(payload, exportName);
        payload.AddRange([0, 1]); // one information request
        payload.AddRange([0, (byte)InfoBlockSize]);
        SendOption(OptGo, payload.ToArray());

        (long Size, ushort Flags)? export = null;
        (uint Min, uint Preferred, uint Max)? blockSize = null;
        while (true)
        {
            var reply = ReadOptionReply(OptGo);
            if (reply.Type == RepAck)
            {
                break;
            }

            if (reply.Type == RepErrUnsup && export is null)
            {
                return ExportName(exportName);
            }

            if (reply.Type == RepErrUnknown)
            {
                throw new NbdException(
                    $"NBD_OPT_GO: the server has no export named '{exportName}'{ErrorText(reply)} (NBD_REP_ERR_UNKNOWN).", "NBD_OPT_GO");
            }

            if ((reply.Type & RepFlagError) != 0)
            {
                throw Refused(OptGo, reply);
            }

            if (reply.Type != RepInfo || reply.Data.Length < 2)
            {
                throw Violation(OptGo, $"unexpected reply type {reply.Type} with {reply.Data.Length} bytes");
            }

            var info = BinaryPrimitives.ReadUInt16BigEndian(reply.Data);
            if (info == InfoExport)
            {
                export = ParseInfoExport(reply.Data);
            }
            else if (info == InfoBlockSize)
            {
                blockSize = ParseInfoBlockSize(reply.Data);
            }
            // NBD_INFO_NAME, NBD_INFO_DESCRIPTION and unknown types: ignored, as the spec asks.
        }

        if (export is null)
        {
            throw Violation(OptGo, "NBD_REP_ACK arrived without NBD_INFO_EXPORT (export size and flags)");
        }

        var (min, preferred, max) = blockSize ?? (DefaultMinimumBlockSize, DefaultPreferredBlockSize, DefaultMaximumBlockSize);
        return new NbdExportDetails(export.Value.Size, export.Value.Flags, min, preferred, max, blockSize is not null);
    }

    /// <summary>The pre-NBD_OPT_GO way to enter transmission; no error reporting, no block sizes.</summary>
    private NbdExportDetails ExportName(string exportName)
    {
        var payload = new List<byte>();
        var name = System.Text.Encoding.UTF8.GetBytes(exportName);
        payload.AddRange(name);
        SendOption(OptExportName, payload.ToArray());
        byte[] reply;
        try
        {
            reply = reader.Read(_noZeroes ? 10 : 134).ToArray();
        }
        catch (NbdConnectionClosedException e)
        {
            throw new NbdException(
                $"NBD_OPT_EXPORT_NAME: the server closed the connection; it probably has no export named '{exportName}'.",
                "NBD_OPT_EXPORT_NAME", inner: e);
        }

        var size = BinaryPrimitives.ReadUInt64BigEndian(reply);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8));
        var (checkedSize, checkedFlags) = CheckExport(OptExportName, size, flags);
        return new NbdExportDetails(checkedSize, checkedFlags,
            DefaultMinimumBlockSize, DefaultPreferredBlockSize, DefaultMaximumBlockSize, false);
    }

    private static (long Size, ushort Flags) ParseInfoExport(byte[] data)
    {
        if (data.Length != 12)
        {
            throw Violation(OptGo, $"NBD_INFO_EXPORT has {data.Length} bytes instead of 12");
        }

        return CheckExport(OptGo, BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2)), BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10)));
    }

    private static (long Size, ushort Flags) CheckExport(uint option, ulong size, ushort flags)
    {
        if (size > long.MaxValue)
        {
            throw Violation(option, $"export size {size} is implausibly large");
        }

        if ((flags & FlagHasFlags) == 0)
        {
            throw Violation(option, $"transmission flags 0x{flags:x4} lack NBD_FLAG_HAS_FLAGS");
        }

        return ((long)size, flags);
    }

    private static (uint Min, uint Preferred, uint Max) ParseInfoBlockSize(byte[] data)
    {
        if (data.Length != 14)
        {
            throw Violation(OptGo, $"NBD_INFO_BLOCK_SIZE has {data.Length} bytes instead of 14");
        }

        var min = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(2));
        var preferred = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(6));
        var max = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(10));
        if (min == 0 || min > 64 * 1024 || !uint.IsPow2(min))
        {
            throw Violation(OptGo, $"minimum block size {min} is not a power of two between 1 and 64 KiB");
        }

        if (!uint.IsPow2(preferred) || preferred < min)
        {
            throw Violation(OptGo, $"preferred block size {preferred} is not a power of two at least the minimum {min}");
        }

        if (max < min || (max % min != 0 && max != uint.MaxValue))
        {
            throw Violation(OptGo, $"maximum block size {max} is not a multiple of the minimum {min}");
        }

        return (min, preferred, max);
    }

    private static string ErrorText(OptionReply reply)
    {
        var message = System.Text.Encoding.UTF8.GetString(reply.Data).Trim();
        return message.Length == 0 ? "" : $": {message}";
    }
}
