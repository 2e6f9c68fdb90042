using VirtBackup.Bench;
using VirtBackup.Core.Libvirt;

try
{
    return args.FirstOrDefault() switch
    {
        "run" => await RunAsync(BenchOptions.Parse(args[1..])),
        "nbd-read" when args.Length >= 2 => await NbdRead.MainAsync(args[1..]),
        "cpu" when args.Length == 2 => CpuProbe.Run(args[1]),
        _ => Usage(),
    };
}
catch (BenchException e)
{
    Console.Error.WriteLine($"VirtBackup.Bench: {e.Message}");
    return 1;
}

static async Task<int> RunAsync(BenchOptions options)
{
    using var libvirt = LibvirtConnection.Open();
    var context = new BenchContext(options, libvirt, new Tool(options.WorkDirectory), new FileInfo(options.DataFile).Length);
    var rows = new List<ResultRow>();
    async Task Bench(string name, Func<Task<IReadOnlyList<ResultRow>>> run)
    {
        if (options.Only.Contains(name))
        {
            Console.Error.WriteLine($"{DateTime.Now:HH:mm:ss} bench: {name} ({options.Runs} runs)");
            rows.AddRange(await run());
        }
    }

    await Bench("read", async () => [await new ReadBench(context).RunAsync()]);
    await Bench("backup", () => new BackupBench(context).RunAsync());
    await Bench("pause", async () => [await new PauseBench(context).RunAsync()]);
    await Bench("rss", async () => [await new RssBench(context).RunAsync()]);
    await Bench("inc", async () => [await new IncrementalBench(context).RunAsync()]);
    await Bench("restore", () => new RestoreBench(context).RunAsync());
    await Bench("boot", () => new BootBench(context).RunAsync());
    await Bench("serve", () => new ServeBench(context).RunAsync());
    await Bench("consolidate", () => new ConsolidateBench(context).RunAsync());
    Console.WriteLine(Results.Table(rows, options.Runs));
    return rows.All(r => r.Pass != false) ? 0 : 3;
}

static int Usage()
{
    Console.Error.WriteLine("""
        usage: VirtBackup.Bench run --domain D4 --domain32 D32 --pause-domain DP --data FILE --virtbackup PATH
                                    --domain-script integration/lab/domain.sh --work DIR [--disk-dir DIR] [--runs 5]
                                    [--only read,backup,pause,rss,inc,restore,boot,serve,consolidate]
               VirtBackup.Bench nbd-read URI              (benchmark 1's reader, the backup's; prints BYTES SECONDS CONNECTIONS)
               VirtBackup.Bench cpu FILE                                  (zstd/SHA-256 speed per 4 MiB member)
        integration/bench/run.sh sets everything up and runs `run`.
        """);
    return 2;
}
