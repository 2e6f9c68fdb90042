namespace VirtBackup.Core.Nbd;

/// <summary>What to negotiate when connecting.</summary>
public sealed record NbdConnectOptions
{
    public static NbdConnectOptions Default { get; } = new();

    /// <summary>
    /// Metadata contexts to select with NBD_OPT_SET_META_CONTEXT, e.g. "base:allocation" or
    /// "qemu:dirty-bitmap:NAME". Each must be granted by the server, or connecting fails.
    /// </summary>
    public IReadOnlyList<string> MetaContexts { get; init; } = [];

    /// <summary>Negotiate structured replies (needed for block status and sparse reads).</summary>
    public bool StructuredReplies { get; init; } = true;

    /// <summary>Limit for connecting plus the whole handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>TLS (NBD_OPT_STARTTLS) with these certificates; null: no TLS (unix sockets and trusted networks).</summary>
    public NbdTls? Tls { get; init; }

    internal void Validate()
    {
        Tls?.Validate();
        if (MetaContexts.Count > 0 && !StructuredReplies)
        {
            throw new ArgumentException("Metadata contexts (block status) require structured replies.", nameof(MetaContexts));
        }

        foreach (var context in MetaContexts)
        {
            if (string.IsNullOrEmpty(context) || !context.Contains(':'))
            {
                throw new ArgumentException($"'{context}' is not a metadata context name (namespace:name).", nameof(MetaContexts));
            }
        }

        if (MetaContexts.Distinct(StringComparer.Ordinal).Count() != MetaContexts.Count)
        {
            throw new ArgumentException("A metadata context is listed twice.", nameof(MetaContexts));
        }

        if (ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), "The connect timeout must be positive.");
        }
    }
}
