using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace VirtBackup.IntegrationTests.Remote;

[Collection(SshCollection.Name)]
public class SshSessionTests(ITestOutputHelper output)
{
    [Fact(Timeout = 120_000)]
    public async Task A_session_connects_once_and_runs_commands_over_the_master_with_exact_bytes()
    {
        await SshLab.EnsureAsync();
        var connecting = Stopwatch.StartNew();
        await using var session = await SshSession.ConnectAsync(SshLab.Root);
        output.WriteLine($"connect + authenticate: {connecting.Elapsed.TotalMilliseconds:F1} ms");

        Assert.Equal("root@127.0.0.1:22", session.Display);
        Assert.Equal("root", session.RemoteUser);

        // Exact stdout: no trailing newline added or removed, binary passes unchanged both ways.
        Assert.Equal("a b\n\nc"u8.ToArray(), await session.RunAsync("printf 'a b\\n\\nc'"));
        var binary = RandomNumberGenerator.GetBytes(1 << 20);
        binary[0] = 0;
        binary[1] = 0xFF;
        Assert.Equal(binary, await session.RunAsync("cat", binary));
        Assert.Empty(await session.RunAsync("true"));

        // Every command rides the one TCP connection: sshd reports the same client port each time.
        var first = Encoding.UTF8.GetString(await session.RunAsync("echo \"$SSH_CONNECTION\""));
        var second = Encoding.UTF8.GetString(await session.RunAsync("echo \"$SSH_CONNECTION\""));
        Assert.StartsWith("127.0.0.1 ", first);
        Assert.Equal(first, second);

        // Latency over the master: the pure multiplexing round trip, then a whole remote command (whose
        // cost includes the remote login shell's start-up, e.g. ~/.bashrc for bash).
        var check = new List<double>();
        var command = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            check.Add((await session.CheckAsync()).TotalMilliseconds);
            var stopwatch = Stopwatch.StartNew();
            await session.RunAsync("true");
            command.Add(stopwatch.Elapsed.TotalMilliseconds);
        }

        output.WriteLine($"ssh -O check over the master: median {Median(check):F1} ms, max {check.Max():F1} ms");
        output.WriteLine($"remote command 'true' as root over the master: median {Median(command):F1} ms, max {command.Max():F1} ms");
        Assert.True(Median(check) < 2000, $"median -O check {Median(check)} ms");
        Assert.True(Median(command) < 10_000, $"median command {Median(command)} ms");

        await using var user = await SshSession.ConnectAsync(SshLab.User);
        var userCommand = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            await user.RunAsync("true");
            userCommand.Add(stopwatch.Elapsed.TotalMilliseconds);
        }

        output.WriteLine($"remote command 'true' as {SshLab.UnprivilegedUser} (login shell /bin/sh): median {Median(userCommand):F1} ms, max {userCommand.Max():F1} ms");
        Assert.Equal("vbtssh\n"u8.ToArray(), await user.RunAsync("id -un"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Every_remote_command_is_logged_at_debug_with_its_operation_exit_code_and_duration()
    {
        await SshLab.EnsureAsync();
        var lines = new List<string>();
        var log = new Serilog.LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(new LineSink(lines)).CreateLogger();
        await using (var session = await SshSession.ConnectAsync(SshLab.Root, log: log))
        {
            await session.RunAsync("true", operation: "do nothing");
            await session.ExecuteAsync("exit 3", operation: "fail on purpose");
        }

        var commands = lines.Where(l => Regex.IsMatch(l, @": exit \d+ in \d+ ms$")).ToList();
        Assert.Equal(2, commands.Count);
        Assert.Matches(@"^ssh: do nothing on root@127\.0\.0\.1:22: exit 0 in \d+ ms$", commands[0]);
        Assert.Matches(@"^ssh: fail on purpose on root@127\.0\.0\.1:22: exit 3 in \d+ ms$", commands[1]);
    }

    /// <summary>Keeps each event's message as the CLI prints it (strings unquoted).</summary>
    private sealed class LineSink(List<string> lines) : Serilog.Core.ILogEventSink
    {
        private readonly Serilog.Formatting.Display.MessageTemplateTextFormatter _format = new("{Message:lj}");

        public void Emit(Serilog.Events.LogEvent logEvent)
        {
            using var text = new StringWriter();
            _format.Format(logEvent, text);
            lock (lines)
            {
                lines.Add(text.ToString());
            }
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_failing_remote_command_raises_RemoteException_with_exit_code_stderr_host_and_operation()
    {
        await using var session = await SshLab.ConnectAsync();

        var e = await Assert.ThrowsAsync<RemoteException>(() => session.RunAsync("echo oops >&2; exit 7", operation: "do the thing"));

        Assert.Equal(7, e.ExitCode);
        Assert.Equal("oops", e.StandardError);
        Assert.Equal("root@127.0.0.1:22", e.Host);
        Assert.Equal("do the thing", e.Operation);
        Assert.Equal("do the thing on root@127.0.0.1:22: the remote command failed (exit code 7): oops", e.Message);
        Assert.Equal(ErrorCategory.Refused, e.Category);

        var result = await session.ExecuteAsync("printf out; echo err >&2; exit 3");
        Assert.Equal(new SshCommandResult(3, "out"u8.ToArray(), "err\n").ExitCode, result.ExitCode);
        Assert.Equal("out"u8.ToArray(), result.StandardOutput);
        Assert.Equal("err\n", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_bad_key_raises_RemoteException_with_the_message_of_ssh()
    {
        await SshLab.EnsureAsync();
        using var scratch = SshLab.CreateScratch();
        var key = scratch["unknown_ed25519"];
        await SshLab.RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key);
        var e = await Assert.ThrowsAsync<RemoteException>(
            () => SshSession.ConnectAsync(SshLab.Root with { KeyFile = key }));

        output.WriteLine(e.Message);
        Assert.Equal("connect", e.Operation);
        Assert.Equal("root@127.0.0.1:22", e.Host);
        Assert.Equal(255, e.ExitCode);
        Assert.Matches(@"^cannot connect to root@127\.0\.0\.1:22: Permission denied \(publickey(,[a-z-]+)*\)\.$", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_libvirt_qemu_ssh_uri_with_a_keyfile_connects_like_virsh_does()
    {
        await SshLab.EnsureAsync();
        var target = SshTarget.FromLibvirtUri($"qemu+ssh://root@127.0.0.1/system?keyfile={SshLab.RootKey}");

        await using var session = await SshSession.ConnectAsync(target);

        Assert.Equal("root@127.0.0.1:22", session.Display);
        Assert.Equal("root\n"u8.ToArray(), await session.RunAsync("id -un"));
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unknown_host_key_is_refused_unless_no_verify_is_set()
    {
        await SshLab.EnsureAsync();
        using var scratch = SshLab.CreateScratch();
        var knownHosts = scratch["known_hosts"];
        var strange = SshLab.Root with
        {
            Options = ["-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null"],
        };

        var e = await Assert.ThrowsAsync<RemoteException>(() => SshSession.ConnectAsync(strange));
        Assert.Equal("cannot connect to root@127.0.0.1:22: Host key verification failed.", e.Message);

        await using var session = await SshSession.ConnectAsync(strange with { NoVerify = true });
        Assert.Equal("ok"u8.ToArray(), await session.RunAsync("printf ok"));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_missing_ssh_client_raises_RemoteException()
    {
        var e = await Assert.ThrowsAsync<RemoteException>(
            () => SshSession.ConnectAsync(SshLab.Root, new SshSessionOptions { SshExecutable = "/nonexistent/ssh" }));

        Assert.StartsWith("connect on root@127.0.0.1: cannot run '/nonexistent/ssh': ", e.Message);
        Assert.Null(e.ExitCode);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closed_port_raises_RemoteException_naming_the_refused_connection()
    {
        await SshLab.EnsureAsync();

        var e = await Assert.ThrowsAsync<RemoteException>(() => SshSession.ConnectAsync(SshLab.Root with { Port = 1 }));

        Assert.Equal("cannot connect to root@127.0.0.1:1: connect to host 127.0.0.1 port 1: Connection refused", e.Message);
        Assert.Equal(255, e.ExitCode);
    }

    [Fact(Timeout = 60_000)]
    public async Task Invalid_ssh_options_are_refused_before_connecting()
    {
        await SshLab.EnsureAsync();

        var e = await Assert.ThrowsAsync<RemoteException>(
            () => SshSession.ConnectAsync(SshLab.Root with { Options = ["-o", "NoSuchOption=1"] }));

        Assert.StartsWith("cannot connect to root@127.0.0.1: ", e.Message);
        Assert.Contains("nosuchoption", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact(Timeout = 60_000)]
    public async Task Disposing_the_session_stops_the_master_and_removes_its_private_directory()
    {
        var session = await SshLab.ConnectAsync();
        var pid = session.MasterProcessId;
        var directory = session.PrivateDirectory;

        Assert.NotNull(pid);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
        Assert.True(File.Exists(session.ControlPath));
        await session.ForwardUnixSocketAsync("/tmp/vbt-nothing-here.sock");

        await session.DisposeAsync();

        Assert.False(Directory.Exists(directory));
        Assert.False(SshSession.IsRunningSsh(pid!.Value), $"the master (pid {pid}) still runs");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => session.RunAsync("true"));
        await session.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task Commands_fail_clearly_once_the_master_connection_is_gone()
    {
        await using var session = await SshLab.ConnectAsync();
        using (var master = Process.GetProcessById(session.MasterProcessId!.Value))
        {
            master.Kill();
            await master.WaitForExitAsync();
        }

        var e = await Assert.ThrowsAsync<RemoteException>(() => session.RunAsync("true", operation: "probe"));

        Assert.StartsWith("probe on root@127.0.0.1:22: the SSH connection is gone", e.Message);
        Assert.Equal(255, e.ExitCode);
    }

    [Fact(Timeout = 120_000)]
    public async Task More_concurrent_commands_than_sshd_allows_sessions_all_succeed()
    {
        await using var session = await SshLab.ConnectAsync();

        var results = await Task.WhenAll(
            Enumerable.Range(0, 24).Select(i => session.RunAsync($"sleep 0.2; echo {i}")));

        Assert.Equal(
            Enumerable.Range(0, 24).Select(i => $"{i}\n"),
            results.Select(r => Encoding.ASCII.GetString(r)));
    }

    [Fact(Timeout = 120_000)]
    public async Task A_remote_unix_socket_is_reachable_through_the_forwarded_local_socket()
    {
        using var scratch = SshLab.CreateScratch();
        var remote = scratch["echo server's.sock"];
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(remote));
        listener.Listen();
        using var stop = new CancellationTokenSource();
        var server = ServeEchoAsync(listener, stop.Token);

        await using var session = await SshLab.ConnectAsync();
        var forwarding = Stopwatch.StartNew();
        var local = await session.ForwardUnixSocketAsync(remote);
        output.WriteLine($"forward set-up: {forwarding.Elapsed.TotalMilliseconds:F1} ms");

        Assert.Equal(session.PrivateDirectory, Path.GetDirectoryName(local));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(local));

        // Two connections at once, each its own channel, 4 MiB each way.
        var exchanges = await Task.WhenAll(ExchangeAsync(local, 4 << 20), ExchangeAsync(local, 4 << 20));
        foreach (var (sent, received, elapsed) in exchanges)
        {
            Assert.Equal(sent, received);
            output.WriteLine($"4 MiB echoed through the forward in {elapsed.TotalMilliseconds:F0} ms");
        }

        await session.CancelForwardAsync(local);
        Assert.False(File.Exists(local));
        using var refused = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Assert.Throws<SocketException>(() => refused.Connect(new UnixDomainSocketEndPoint(local)));

        await stop.CancelAsync();
        await server;
    }

    [Fact(Timeout = 60_000)]
    public async Task A_forward_to_a_remote_socket_that_does_not_exist_gives_end_of_stream_and_a_logged_refusal()
    {
        await using var session = await SshLab.ConnectAsync();
        var local = await session.ForwardUnixSocketAsync("/tmp/vbt-no-such-socket.sock");

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(local));
        Assert.Equal(0, await socket.ReceiveAsync(new byte[16]));

        var log = session.ReadConnectionLog();
        for (var i = 0; i < 100 && log.Length == 0; i++)
        {
            await Task.Delay(20);
            log = session.ReadConnectionLog();
        }

        output.WriteLine(log);
        Assert.Contains("open failed", log);
    }

    private static async Task<(byte[] Sent, byte[] Received, TimeSpan Elapsed)> ExchangeAsync(string path, int length)
    {
        var stopwatch = Stopwatch.StartNew();
        var sent = RandomNumberGenerator.GetBytes(length);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await using var stream = new NetworkStream(socket);
        var writing = stream.WriteAsync(sent).AsTask();
        var received = new byte[length];
        await stream.ReadExactlyAsync(received);
        await writing;
        return (sent, received, stopwatch.Elapsed);
    }

    private static async Task ServeEchoAsync(Socket listener, CancellationToken cancellationToken)
    {
        var clients = new List<Task>();
        try
        {
            while (true)
            {
                var client = await listener.AcceptAsync(cancellationToken);
                clients.Add(Task.Run(async () =>
                {
                    using (client)
                    {
                        await using var stream = new NetworkStream(client);
                        var buffer = new byte[65536];
                        int read;
                        while ((read = await stream.ReadAsync(buffer)) > 0)
                        {
                            await stream.WriteAsync(buffer.AsMemory(0, read));
                        }
                    }
                }));
            }
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(clients);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
