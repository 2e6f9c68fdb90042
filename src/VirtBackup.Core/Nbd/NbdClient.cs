using System.Net.Sockets;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// A native NBD client for one export over one connection (unix socket or TCP). Several requests may be
/// in flight at once: sends are serialized, and one background loop reads the replies and completes
/// them by handle, copying READ data straight into the caller's buffer. Every reply is validated; a
/// server that breaks the protocol or disappears fails all pending requests with <see cref="NbdException"/>.
/// </summary>
public sealed partial class NbdClient : IAsyncDisposable
{
    private readonly NbdTransport _transport;
    private readonly NbdSocketReader _input;
    private readonly NbdExportDetails _export;
    private readonly Dictionary<uint, string> _contextNames;

    private NbdClient(NbdUri uri, NbdTransport transport, NbdSocketReader input, NbdExportDetails export,
        bool structuredReplies, IReadOnlyDictionary<string, uint> contexts)
    {
        Uri = uri;
        _transport = transport;
        _input = input;
        _export = export;
        StructuredReplies = structuredReplies;
        MetaContexts = contexts;
        _contextNames = contexts.ToDictionary(c => c.Value, c => c.Key);
        _cancelledWhileReceiving = _ => Abort("a request was cancelled while its data was arriving, so the connection was closed");
    }

    public NbdUri Uri { get; }

    public long ExportSize => _export.Size;

    /// <summary>The raw NBD transmission flags.</summary>
    public ushort TransmissionFlags => _export.TransmissionFlags;

    public bool ReadOnly => Has(FlagReadOnly);
    public bool CanFlush => Has(FlagSendFlush);
    public bool CanFua => Has(FlagSendFua);
    public bool CanTrim => Has(FlagSendTrim);
    public bool CanWriteZeroes => Has(FlagSendWriteZeroes);
    public bool CanFastZero => Has(FlagSendFastZero);
    public bool CanMultiConn => Has(FlagCanMultiConn);

    /// <summary>Requests must be aligned to this (1 unless the server says otherwise).</summary>
    public uint MinimumBlockSize => _export.MinimumBlockSize;

    public uint PreferredBlockSize => _export.PreferredBlockSize;

    /// <summary>Largest READ/WRITE payload the server accepts (32 MiB when the server does not say).</summary>
    public uint MaximumBlockSize => _export.MaximumBlockSize;

    /// <summary>False when the server sent no NBD_INFO_BLOCK_SIZE and the sizes above are the protocol defaults.</summary>
    public bool BlockSizesAdvertised => _export.BlockSizeAdvertised;

    public bool StructuredReplies { get; }

    /// <summary>Negotiated metadata contexts and the id the server assigned to each.</summary>
    public IReadOnlyDictionary<string, uint> MetaContexts { get; }

    private bool Has(ushort flag) => (_export.TransmissionFlags & flag) != 0;

    /// <summary>Connects, negotiates (structured replies, meta contexts, NBD_OPT_GO) and starts the reply loop.</summary>
    public static async Task<NbdClient> ConnectAsync(NbdUri uri, NbdConnectOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        options ??= NbdConnectOptions.Default;
        options.Validate();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.ConnectTimeout);
        NbdTransport? transport = null;
        NbdSocketReader? input = null;
        try
        {
            transport = await NbdTransport.ConnectAsync(uri, timeout.Token).ConfigureAwait(false);
            input = new NbdSocketReader(transport);
            var handshake = new NbdHandshake(transport, input, timeout.Token);
            await handshake.ReadGreetingAsync().ConfigureAwait(false);
            await handshake.SendClientFlagsAsync().ConfigureAwait(false);
            var structured = options.StructuredReplies && await handshake.NegotiateStructuredRepliesAsync().ConfigureAwait(false);
            if (!structured && options.MetaContexts.Count > 0)
                throw new NbdException("NBD_OPT_STRUCTURED_REPLY: the server does not support structured replies, which block status (metadata contexts) requires.", "NBD_OPT_STRUCTURED_REPLY");
            IReadOnlyDictionary<string, uint> contexts = options.MetaContexts.Count == 0
                ? new Dictionary<string, uint>()
                : await handshake.SetMetaContextsAsync(uri.ExportName, options.MetaContexts).ConfigureAwait(false);
            var export = await handshake.GoAsync(uri.ExportName).ConfigureAwait(false);
            var client = new NbdClient(uri, transport, input, export, structured, contexts);
            client.StartReplyReader();
            return client;
        }
        catch (Exception e)
        {
            input?.Dispose();
            transport?.Dispose();
            var translated = TranslateHandshakeFailure(e, uri, options, ct);
            if (ReferenceEquals(translated, e))
                throw;
            throw translated;
        }
    }

    /// <summary>Lists the exports a server announces (NBD_OPT_LIST), then hangs up politely.</summary>
    public static async Task<IReadOnlyList<NbdExportInfo>> ListExportsAsync(NbdUri uri, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var options = NbdConnectOptions.Default;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.ConnectTimeout);
        NbdTransport? transport = null;
        NbdSocketReader? input = null;
        try
        {
            transport = await NbdTransport.ConnectAsync(uri, timeout.Token).ConfigureAwait(false);
            input = new NbdSocketReader(transport);
            var handshake = new NbdHandshake(transport, input, timeout.Token);
            await handshake.ReadGreetingAsync().ConfigureAwait(false);
            await handshake.SendClientFlagsAsync().ConfigureAwait(false);
            var exports = await handshake.ListExportsAsync().ConfigureAwait(false);
            await handshake.AbortAsync().ConfigureAwait(false);
            return exports;
        }
        catch (Exception e)
        {
            var translated = TranslateHandshakeFailure(e, uri, options, ct);
            if (ReferenceEquals(translated, e))
                throw;
            throw translated;
        }
        finally
        {
            input?.Dispose();
            transport?.Dispose();
        }
    }

    private static Exception TranslateHandshakeFailure(Exception e, NbdUri uri, NbdConnectOptions options, CancellationToken ct) => e switch
    {
        OperationCanceledException when ct.IsCancellationRequested => e,
        OperationCanceledException => new NbdException(
            $"NBD handshake with {uri}: server error: no complete answer within {options.ConnectTimeout.TotalSeconds:0.#} s.", "handshake", isServerError: true, inner: e),
        NbdConnectionClosedException => new NbdException(
            $"NBD handshake with {uri}: server error: the server closed the connection during the handshake.", "handshake", isServerError: true, inner: e),
        SocketException s => new NbdException($"NBD handshake with {uri}: the connection failed: {s.Message}.", "handshake", inner: e),
        _ => e,
    };
}
