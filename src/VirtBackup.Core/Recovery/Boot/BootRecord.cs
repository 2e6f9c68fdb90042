using System.Text.Json;

namespace VirtBackup.Core.Recovery.Boot;

/// <summary>
/// What a boot made, written to <c>RUN_DIR/boot.json</c> as each part is made (before the domain exists, so a
/// boot that fails half-way, and a later <c>boot --stop NAME</c>, can remove exactly that): the domain's name and
/// UUID, the serve process's pid and socket, the overlays, the NVRAM file and the swtpm directory; also who makes
/// it (<see cref="Owner"/>) and how far it got (<see cref="Phase"/>), which tell a stale boot (<see cref="StaleBoots"/>).
/// </summary>
public sealed class BootRecord
{
    public required string Name { get; init; }
    public required string Uuid { get; init; }
    public required string RunDirectory { get; init; }
    public required string SocketPath { get; init; }
    public int ServePid { get; set; }
    public List<string> Overlays { get; } = [];
    public string? NvramPath { get; set; }
    public string? SwtpmDirectory { get; set; }
    public bool Defined { get; set; }

    /// <summary>A serial console log made outside the run directory (live restore: <c>DISK_DIR/NAME-serial.log</c>).</summary>
    public string? SerialLogPath { get; set; }

    public BootOwner Owner { get; set; } = new(0, 0);

    public BootPhase Phase { get; set; } = BootPhase.Booting;

    public static BootRecord For(BootLayout layout) => new()
    {
        Name = layout.Name,
        Uuid = layout.Uuid,
        RunDirectory = layout.RunDirectory,
        SocketPath = layout.SocketPath,
    };

    public void Save()
    {
        var path = BootLayout.RecordPathFor(RunDirectory);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("name", Name);
            json.WriteString("uuid", Uuid);
            json.WriteString("runDirectory", RunDirectory);
            json.WriteString("socket", SocketPath);
            json.WriteNumber("servePid", ServePid);
            json.WriteStartArray("overlays");
            foreach (var overlay in Overlays)
            {
                json.WriteStringValue(overlay);
            }

            json.WriteEndArray();
            json.WriteString("nvram", NvramPath);
            json.WriteString("swtpmDirectory", SwtpmDirectory);
            json.WriteBoolean("defined", Defined);
            json.WriteString("serialLog", SerialLogPath);
            json.WriteNumber("ownerPid", Owner.Pid);
            json.WriteNumber("ownerStartTicks", Owner.StartTicks);
            json.WriteString("phase", Phase.ToString());
            json.WriteEndObject();
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The record in <paramref name="runDirectory"/>, or null when there is none.</summary>
    public static BootRecord? Load(string runDirectory)
    {
        var path = BootLayout.RecordPathFor(runDirectory);
        if (!File.Exists(path))
        {
            return null;
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        var record = new BootRecord
        {
            Name = root.GetProperty("name").GetString()!,
            Uuid = root.GetProperty("uuid").GetString()!,
            RunDirectory = runDirectory,
            SocketPath = root.GetProperty("socket").GetString()!,
            ServePid = root.GetProperty("servePid").GetInt32(),
            NvramPath = root.GetProperty("nvram").GetString(),
            SwtpmDirectory = root.GetProperty("swtpmDirectory").GetString(),
            Defined = root.GetProperty("defined").GetBoolean(),
            SerialLogPath = root.TryGetProperty("serialLog", out var serial) ? serial.GetString() : null,
            Owner = new BootOwner(
                root.TryGetProperty("ownerPid", out var pid) ? pid.GetInt32() : 0,
                root.TryGetProperty("ownerStartTicks", out var ticks) ? ticks.GetInt64() : 0),
            // A record without a phase was written by a boot that finished (older versions wrote it only then).
            Phase = root.TryGetProperty("phase", out var phase) && Enum.TryParse<BootPhase>(phase.GetString(), out var parsed) ? parsed : BootPhase.Booted,
        };
        foreach (var overlay in root.GetProperty("overlays").EnumerateArray())
        {
            record.Overlays.Add(overlay.GetString()!);
        }

        return record;
    }
}

/// <summary>How far a recorded boot got.</summary>
public enum BootPhase
{
    /// <summary>Being made, or a verify --boot copy being checked: its owner process runs until it is up or removed.</summary>
    Booting,

    /// <summary>Up, and <c>boot --live-restore</c> pulls its data into local images: its owner waits for the pull.</summary>
    Pulling,

    /// <summary>Up, the command returned: the domain runs from the backup as long as the server serves.</summary>
    Booted,

    /// <summary>Live restore done: the domain and its images are no longer the boot's; only the server and run directory are left to remove.</summary>
    Restored,
}
