namespace VirtBackup.CliApp.Verbs;

/// <summary>Every verb the CLI knows, in the order help lists them.</summary>
internal static class VerbCatalog
{
    public static IReadOnlyList<IVerb> All { get; } =
    [
        new BackupVerb(),
        new RestoreVerb(),
        new ListVerb(),
        new VerifyVerb(),
        new RepairVerb(),
        new ServeVerb(),
        new ConsolidateVerb(),
        new BootVerb(),
    ];
}
