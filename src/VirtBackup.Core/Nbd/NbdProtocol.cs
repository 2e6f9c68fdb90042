namespace VirtBackup.Core.Nbd;

/// <summary>
/// Every wire constant of the NBD protocol this client uses, in one place
/// (NetworkBlockDevice/nbd doc/proto.md). All integers travel big-endian.
/// </summary>
internal static class NbdProtocol
{
    public const int DefaultPort = 10809;

    // Magics.
    public const ulong InitPasswd = 0x4e42444d41474943; // "NBDMAGIC"
    public const ulong OptsMagic = 0x49484156454F5054; // "IHAVEOPT"
    public const ulong OldstyleMagic = 0x00420281861253; // cliserv_magic (unsupported)
    public const ulong OptionReplyMagic = 0x3e889045565a9;
    public const uint RequestMagic = 0x25609513;
    public const uint SimpleReplyMagic = 0x67446698;
    public const uint StructuredReplyMagic = 0x668e33ef;

    // Handshake flags (server, 16 bits) and client flags (32 bits).
    public const ushort FlagFixedNewstyle = 1 << 0;
    public const ushort FlagNoZeroes = 1 << 1;
    public const uint ClientFlagFixedNewstyle = 1 << 0;
    public const uint ClientFlagNoZeroes = 1 << 1;

    // Transmission flags (16 bits).
    public const ushort FlagHasFlags = 1 << 0;
    public const ushort FlagReadOnly = 1 << 1;
    public const ushort FlagSendFlush = 1 << 2;
    public const ushort FlagSendFua = 1 << 3;
    public const ushort FlagRotational = 1 << 4;
    public const ushort FlagSendTrim = 1 << 5;
    public const ushort FlagSendWriteZeroes = 1 << 6;
    public const ushort FlagSendDf = 1 << 7;
    public const ushort FlagCanMultiConn = 1 << 8;
    public const ushort FlagSendResize = 1 << 9;
    public const ushort FlagSendCache = 1 << 10;
    public const ushort FlagSendFastZero = 1 << 11;

    // Options.
    public const uint OptExportName = 1;
    public const uint OptAbort = 2;
    public const uint OptList = 3;
    public const uint OptStartTls = 5;
    public const uint OptInfo = 6;
    public const uint OptGo = 7;
    public const uint OptStructuredReply = 8;
    public const uint OptListMetaContext = 9;
    public const uint OptSetMetaContext = 10;

    // Option reply types.
    public const uint RepAck = 1;
    public const uint RepServer = 2;
    public const uint RepInfo = 3;
    public const uint RepMetaContext = 4;
    public const uint RepFlagError = 1u << 31;
    public const uint RepErrUnsup = RepFlagError | 1;
    public const uint RepErrPolicy = RepFlagError | 2;
    public const uint RepErrInvalid = RepFlagError | 3;
    public const uint RepErrPlatform = RepFlagError | 4;
    public const uint RepErrTlsReqd = RepFlagError | 5;
    public const uint RepErrUnknown = RepFlagError | 6;
    public const uint RepErrShutdown = RepFlagError | 7;
    public const uint RepErrBlockSizeReqd = RepFlagError | 8;
    public const uint RepErrTooBig = RepFlagError | 9;
    public const uint RepErrExtHeaderReqd = RepFlagError | 10;

    // NBD_INFO types (inside NBD_REP_INFO replies and NBD_OPT_GO requests).
    public const ushort InfoExport = 0;
    public const ushort InfoName = 1;
    public const ushort InfoDescription = 2;
    public const ushort InfoBlockSize = 3;

    // Commands.
    public const ushort CmdRead = 0;
    public const ushort CmdWrite = 1;
    public const ushort CmdDisc = 2;
    public const ushort CmdFlush = 3;
    public const ushort CmdTrim = 4;
    public const ushort CmdCache = 5;
    public const ushort CmdWriteZeroes = 6;
    public const ushort CmdBlockStatus = 7;

    // Command flags.
    public const ushort CmdFlagFua = 1 << 0;
    public const ushort CmdFlagNoHole = 1 << 1;
    public const ushort CmdFlagDf = 1 << 2;
    public const ushort CmdFlagReqOne = 1 << 3;
    public const ushort CmdFlagFastZero = 1 << 4;

    // Structured reply flags and chunk types.
    public const ushort ReplyFlagDone = 1 << 0;
    public const ushort ReplyTypeNone = 0;
    public const ushort ReplyTypeOffsetData = 1;
    public const ushort ReplyTypeOffsetHole = 2;
    public const ushort ReplyTypeBlockStatus = 5;
    public const ushort ReplyTypeErrorBit = 1 << 15;
    public const ushort ReplyTypeError = ReplyTypeErrorBit | 1;
    public const ushort ReplyTypeErrorOffset = ReplyTypeErrorBit | 2;

    // base:allocation flags; a dirty-bitmap context uses bit 0 for "dirty".
    public const uint StateHole = 1 << 0;
    public const uint StateZero = 1 << 1;
    public const uint StateDirty = 1 << 0;

    // Error numbers (transmission phase).
    public const uint EPerm = 1;
    public const uint EIo = 5;
    public const uint ENoMem = 12;
    public const uint EInval = 22;
    public const uint ENoSpc = 28;
    public const uint EOverflow = 75;
    public const uint ENotSup = 95;
    public const uint EShutdown = 108;

    // Sizes.
    public const int RequestHeaderSize = 28;
    public const int SimpleReplyHeaderSize = 16;
    public const int StructuredReplyHeaderSize = 20;
    public const int OptionReplyHeaderSize = 20;
    public const int MaxStringLength = 4096;

    /// <summary>The payload limit the spec recommends when the server advertises no maximum block size.</summary>
    public const uint DefaultMaximumBlockSize = 32 * 1024 * 1024;
    public const uint DefaultPreferredBlockSize = 4096;
    public const uint DefaultMinimumBlockSize = 1;

    public const string BaseAllocation = "base:allocation";
    public const string DirtyBitmapPrefix = "qemu:dirty-bitmap:";

    public static string CommandName(ushort command) => command switch
    {
        CmdRead => "READ",
        CmdWrite => "WRITE",
        CmdDisc => "DISC",
        CmdFlush => "FLUSH",
        CmdTrim => "TRIM",
        CmdCache => "CACHE",
        CmdWriteZeroes => "WRITE_ZEROES",
        CmdBlockStatus => "BLOCK_STATUS",
        _ => $"command {command}",
    };

    public static string OptionName(uint option) => option switch
    {
        OptExportName => "NBD_OPT_EXPORT_NAME",
        OptAbort => "NBD_OPT_ABORT",
        OptList => "NBD_OPT_LIST",
        OptStartTls => "NBD_OPT_STARTTLS",
        OptInfo => "NBD_OPT_INFO",
        OptGo => "NBD_OPT_GO",
        OptStructuredReply => "NBD_OPT_STRUCTURED_REPLY",
        OptListMetaContext => "NBD_OPT_LIST_META_CONTEXT",
        OptSetMetaContext => "NBD_OPT_SET_META_CONTEXT",
        _ => $"option {option}",
    };

    public static string OptionErrorName(uint reply) => reply switch
    {
        RepErrUnsup => "NBD_REP_ERR_UNSUP (option not supported by the server)",
        RepErrPolicy => "NBD_REP_ERR_POLICY (forbidden by server policy)",
        RepErrInvalid => "NBD_REP_ERR_INVALID (the server considers the request invalid)",
        RepErrPlatform => "NBD_REP_ERR_PLATFORM (not supported on the server's platform)",
        RepErrTlsReqd => "NBD_REP_ERR_TLS_REQD (the server requires TLS)",
        RepErrUnknown => "NBD_REP_ERR_UNKNOWN (no such export)",
        RepErrShutdown => "NBD_REP_ERR_SHUTDOWN (the server is shutting down)",
        RepErrBlockSizeReqd => "NBD_REP_ERR_BLOCK_SIZE_REQD (the server requires block size negotiation)",
        RepErrTooBig => "NBD_REP_ERR_TOO_BIG (request too big)",
        RepErrExtHeaderReqd => "NBD_REP_ERR_EXT_HEADER_REQD (the server requires extended headers)",
        _ => $"error reply 0x{reply:x8}",
    };

    public static string ErrnoName(uint errno) => errno switch
    {
        EPerm => "EPERM (operation not permitted)",
        EIo => "EIO (input/output error)",
        ENoMem => "ENOMEM (cannot allocate memory)",
        EInval => "EINVAL (invalid argument)",
        ENoSpc => "ENOSPC (no space left on device)",
        EOverflow => "EOVERFLOW (value too large)",
        ENotSup => "ENOTSUP (operation not supported)",
        EShutdown => "ESHUTDOWN (server is shutting down)",
        _ => $"error {errno}",
    };
}
