using System.Net.Sockets;
using System.Security.Authentication;
using static VirtBackup.Core.Nbd.NbdProtocol;

namespace VirtBackup.Core.Nbd;

/// <summary>
/// A native NBD client for one export over one connection (unix socket or TCP). Several requests may be
/// in flight at once: sends are serialized, and one reply thread reads the replies and completes them by
/// handle, receiving READ data straight into the caller's buffer. Every reply is validated; a
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

    /// <summary>Connects, negotiates (structured replies, meta contexts, NBD_OPT_GO) and starts the reply thread.</summary>
    public static Task<NbdClient> ConnectAsync(NbdUri uri, NbdConnectOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        options ??= NbdConnectOptions.Default;
        options.Validate();
        return HandshakeAsync(uri, options.ConnectTimeout, keepConnection: true, cancellationToken, (transport, input) =>
        {
            var handshake = new NbdHandshake(transport, input);
            handshake.ReadGreeting();
            handshake.SendClientFlags();
            if (options.Tls is null)
            {
                return Negotiate(uri, options, transport, input, handshake);
            }

            handshake.StartTls(options.Tls);
            try
            {
                return Negotiate(uri, options, transport, input, handshake);
            }
            catch (Exception e) when (e is IOException or AuthenticationException)
            {
                // With TLS 1.3 the server checks our certificate after our side of the handshake finished: it hangs up on the first option.
                throw new NbdException(
                    $"NBD handshake with {uri}: the server ended the TLS connection right after the TLS handshake " +
                    $"({(e is NbdConnectionClosedException ? "it closed the connection" : e.Message)}). " +
                    NbdTransport.ClientCertificateHint(options.Tls), "TLS", inner: e);
            }
        }, client => client.StartReplyReader());
    }

    /// <summary>The options after the client flags (and TLS): structured replies, metadata contexts, NBD_OPT_GO.</summary>
    private static NbdClient Negotiate(NbdUri uri, NbdConnectOptions options, NbdTransport transport, NbdSocketReader input, NbdHandshake handshake)
    {
        var structured = options.StructuredReplies && handshake.NegotiateStructuredReplies();
        if (!structured && options.MetaContexts.Count > 0)
        {
            throw new NbdException("NBD_OPT_STRUCTURED_REPLY: the server does not support structured replies, which block status (metadata contexts) requires.", "NBD_OPT_STRUCTURED_REPLY");
        }

        var contexts = options.MetaContexts.Count == 0
            ? new Dictionary<string, uint>()
            : handshake.SetMetaContexts(uri.ExportName, options.MetaContexts);
        var export = handshake.Go(uri.ExportName);
        return new NbdClient(uri, transport, input, export, structured, contexts);
    }

    /// <summary>Lists the exports a server announces (NBD_OPT_LIST), then hangs up politely.</summary>
    public static Task<IReadOnlyList<NbdExportInfo>> ListExportsAsync(NbdUri uri, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return HandshakeAsync(uri, NbdConnectOptions.Default.ConnectTimeout, keepConnection: false, cancellationToken, (transport, input) =>
        {
            var handshake = new NbdHandshake(transport, input);
            handshake.ReadGreeting();
            handshake.SendClientFlags();
            var exports = handshake.ListExports();
            handshake.Abort();
            return exports;
        }, _ => { });
    }

    /// <summary>
    /// Connects and runs the blocking handshake <paramref name="steps"/> on a pool thread. The deadline (or the
    /// caller's cancellation) closes the socket, which releases any blocked call; failures are translated into
    /// exceptions that say what happened and whose side it is on.
    /// </summary>
    private static async Task<T> HandshakeAsync<T>(
        NbdUri uri, TimeSpan timeout, bool keepConnection, CancellationToken cancellationToken,
        Func<NbdTransport, NbdSocketReader, T> steps, Action<T> onSuccess)
    {
        var transport = NbdTransport.Create(uri);
        var input = new NbdSocketReader(transport);
        var keep = false;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            T result;
            using (deadline.Token.UnsafeRegister(static state => Hangup((NbdTransport)state!), transport))
            {
                result = await Task.Run(() =>
                {
                    transport.Connect();
                    return steps(transport, input);
                }, CancellationToken.None).ConfigureAwait(false);
            }

            deadline.Token.ThrowIfCancellationRequested(); // the deadline struck just as the handshake finished
            keep = keepConnection;
            onSuccess(result);
            return result;
        }
        catch (Exception e) when (deadline.IsCancellationRequested)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException("The NBD connection attempt was cancelled.", e, cancellationToken);
            }

            throw new NbdException($"NBD handshake with {uri}: server error: no complete answer within {timeout.TotalSeconds:0.#} s.",
                "handshake", isServerError: true, inner: e);
        }
        catch (NbdConnectionClosedException e)
        {
            throw new NbdException($"NBD handshake with {uri}: server error: the server closed the connection during the handshake.",
                "handshake", isServerError: true, inner: e);
        }
        catch (SocketException e)
        {
            throw new NbdException($"NBD handshake with {uri}: the connection failed: {e.Message}.", "handshake", inner: e);
        }
        finally
        {
            if (!keep)
            {
                input.Dispose();
                transport.Dispose();
            }
        }
    }

    private static void Hangup(NbdTransport transport)
    {
        transport.Abort();
        transport.Dispose();
    }
}
