using System.Text;
using System.Text.Json;
using CliWrap;

namespace VirtBackup.Core.Hosts.Local;

/// <summary>The few <c>qemu-img</c> operations VirtBackup uses, run through CliWrap.</summary>
public static class QemuImg
{
    public static Task CreateAsync(string path, string format, long virtualSize, CancellationToken cancellationToken) =>
        RunAsync(CreateArguments(path, format, virtualSize), cancellationToken);

    /// <summary>
    /// Creates a qcow2 overlay on <paramref name="backingPath"/> (absolute): reads fall through to the backing image,
    /// writes stay in the overlay until <see cref="CommitAsync"/>.
    /// </summary>
    public static Task CreateOverlayAsync(string path, string backingPath, string backingFormat, CancellationToken cancellationToken) =>
        RunAsync(OverlayArguments(path, backingPath, backingFormat), cancellationToken);

    /// <summary>Writes everything the qcow2 overlay at <paramref name="path"/> holds into its backing image.</summary>
    public static Task CommitAsync(string path, CancellationToken cancellationToken) =>
        RunAsync(CommitArguments(path), cancellationToken);

    /// <summary>Info of an image; <paramref name="forceShare"/> (-U) reads an image a running VM holds.</summary>
    public static async Task<ImageInfo> InfoAsync(string path, bool forceShare, CancellationToken cancellationToken) =>
        ParseInfo(await RunAsync(InfoArguments(path, forceShare), cancellationToken));

    /// <summary>Adds a persistent, enabled dirty bitmap to a qcow2 image no QEMU holds (what libvirt does at a checkpoint).</summary>
    public static Task AddBitmapAsync(string path, string name, CancellationToken cancellationToken) =>
        RunAsync(AddBitmapArguments(path, name), cancellationToken);

    /// <summary>Removes a persistent dirty bitmap from a qcow2 image no QEMU holds.</summary>
    public static Task RemoveBitmapAsync(string path, string name, CancellationToken cancellationToken) =>
        RunAsync(RemoveBitmapArguments(path, name), cancellationToken);

    /// <summary>The qemu-img arguments of each operation: the same whether qemu-img runs here or on a remote host.</summary>
    internal static IReadOnlyList<string> CreateArguments(string path, string format, long virtualSize)
    {
        var args = new List<string> { "create", "-q", "-f", format };
        if (format == "qcow2")
        {
            args.AddRange(["-o", "compat=1.1,lazy_refcounts=off"]);
        }

        args.AddRange([path, virtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return args;
    }

    internal static IReadOnlyList<string> OverlayArguments(string path, string backingPath, string backingFormat) =>
        ["create", "-q", "-f", "qcow2", "-o", "compat=1.1,lazy_refcounts=off", "-b", backingPath, "-F", backingFormat, path];

    internal static IReadOnlyList<string> CommitArguments(string path) => ["commit", "-q", "-f", "qcow2", path];

    internal static IReadOnlyList<string> AddBitmapArguments(string path, string name) => ["bitmap", "-f", "qcow2", "--add", "--enable", path, name];

    internal static IReadOnlyList<string> RemoveBitmapArguments(string path, string name) => ["bitmap", "-f", "qcow2", "--remove", path, name];

    internal static IReadOnlyList<string> InfoArguments(string path, bool forceShare) =>
        forceShare ? ["info", "--output=json", "-U", path] : ["info", "--output=json", path];

    /// <summary>The fields of <c>qemu-img info --output=json</c> that VirtBackup uses.</summary>
    internal static ImageInfo ParseInfo(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var bitmaps = new List<ImageBitmap>();
        if (root.TryGetProperty("format-specific", out var specific)
            && specific.TryGetProperty("data", out var data)
            && data.TryGetProperty("bitmaps", out var list))
        {
            bitmaps.AddRange(list.EnumerateArray().Select(ParseBitmap));
        }

        return new ImageInfo(
            root.GetProperty("format").GetString() ?? "unknown",
            root.GetProperty("virtual-size").GetInt64(),
            root.TryGetProperty("actual-size", out var actual) ? actual.GetInt64() : 0,
            bitmaps);
    }

    private static ImageBitmap ParseBitmap(JsonElement bitmap)
    {
        var flags = bitmap.TryGetProperty("flags", out var list) ? list.EnumerateArray().Select(f => f.GetString()).ToList() : [];
        return new ImageBitmap(
            bitmap.GetProperty("name").GetString() ?? string.Empty,
            flags.Contains(ImageBitmap.EnabledFlag),
            flags.Contains(ImageBitmap.InUseFlag));
    }

    internal static async Task<string> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var result = await Cli.Wrap("qemu-img")
            .WithArguments(args)
            .WithStandardOutputPipe(PipeTarget.ToStringBuilder(stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new ToolException($"qemu-img {string.Join(' ', args)} failed (exit {result.ExitCode}): {stderr.ToString().Trim()}");
        }

        return stdout.ToString();
    }
}
