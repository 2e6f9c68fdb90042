using System.Text;
using VirtBackup.CliApp.Verbs;

namespace VirtBackup.CliApp;

/// <summary>Usage texts; all of them go to stderr (stdout carries data only).</summary>
internal static class Help
{
    public static string Overview(IReadOnlyList<IVerb> verbs)
    {
        var b = new StringBuilder();
        b.AppendLine("virtbackup: complete, consistent backups of libvirt/QEMU VMs (disks, UEFI NVRAM, TPM state)");
        b.AppendLine("as one tar stream on stdout, for restic, Bacula, tar and friends.");
        b.AppendLine();
        b.AppendLine("Usage: virtbackup VERB [OPTIONS]      virtbackup VERB --help for the verb's options");
        b.AppendLine();
        b.AppendLine("Verbs:");
        foreach (var verb in verbs)
        {
            b.AppendLine($"  {verb.Name,-9} {verb.Summary}");
        }

        b.AppendLine();
        AppendExitCodes(b);
        return b.ToString();
    }

    public static string ForVerb(IVerb verb)
    {
        var b = new StringBuilder();
        b.AppendLine($"Usage: virtbackup {verb.Name} [OPTIONS]{(verb.Operands is { } operands ? " " + operands : "")}");
        b.AppendLine();
        b.AppendLine(verb.Summary);
        b.AppendLine();
        b.AppendLine("Options:");
        foreach (var o in verb.Options.Concat(GlobalOptions.Specs))
        {
            var left = o.TakesValue ? $"--{o.Name} {o.ValueName}" : $"--{o.Name}";
            b.AppendLine($"  {left,-28} {o.Help}");
        }

        b.AppendLine();
        AppendExitCodes(b);
        return b.ToString();
    }

    private static void AppendExitCodes(StringBuilder b)
    {
        b.AppendLine("Exit codes:");
        foreach (var (code, meaning) in ExitCodes.Documented)
        {
            b.AppendLine($"  {code,3}  {meaning}");
        }
    }
}
