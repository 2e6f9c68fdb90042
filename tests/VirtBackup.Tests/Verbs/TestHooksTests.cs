using VirtBackup.CliApp;

namespace VirtBackup.Tests.Verbs;

public class TestHooksTests
{
    [Fact]
    public void Without_any_test_variable_no_hook_is_active()
    {
        Assert.Empty(TestHooks.Active(Environment(("VIRTBACKUP_TEST_PAUSE_SECONDS", "5"), ("VIRTBACKUP_TEST_PAUSE_AT", ""))));
    }

    [Theory]
    [InlineData("paused", null, "test hook VIRTBACKUP_TEST_PAUSE_AT=paused is set (TEST ONLY): the backup waits at phase 'paused' for up to 60 s, holding the VM paused; unset it outside tests")]
    [InlineData("state-read", "7", "test hook VIRTBACKUP_TEST_PAUSE_AT=state-read is set (TEST ONLY): the backup waits at phase 'state-read' for up to 7 s, holding the VM paused; unset it outside tests")]
    [InlineData("freeze", "0", "test hook VIRTBACKUP_TEST_PAUSE_AT=freeze is set (TEST ONLY): the backup waits at phase 'freeze' for up to 60 s, holding the guest's file-system freeze, if any; unset it outside tests")]
    [InlineData("streaming", "120", "test hook VIRTBACKUP_TEST_PAUSE_AT=streaming is set (TEST ONLY): the backup waits at phase 'streaming' for up to 120 s, holding the backup job and its scratch images; unset it outside tests")]
    [InlineData("preflight", null, "test hook VIRTBACKUP_TEST_PAUSE_AT=preflight is set (TEST ONLY): the backup waits at phase 'preflight' for up to 60 s, holding the domain's backup lock; unset it outside tests")]
    public void The_pause_hook_is_announced_with_its_phase_its_wait_and_what_it_holds(string phase, string? seconds, string expected)
    {
        var active = TestHooks.Active(Environment(("VIRTBACKUP_TEST_PAUSE_AT", phase), ("VIRTBACKUP_TEST_PAUSE_SECONDS", seconds)));

        Assert.Equal([expected], active);
    }

    private static Func<string, string?> Environment(params (string Name, string? Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;
}
