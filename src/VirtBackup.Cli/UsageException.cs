namespace VirtBackup.CliApp;

/// <summary>The command line is wrong: unknown verb or option, missing or invalid value.</summary>
internal sealed class UsageException(string message) : Exception(message);
