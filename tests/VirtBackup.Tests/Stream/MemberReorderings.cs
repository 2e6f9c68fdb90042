namespace VirtBackup.Tests.Stream;

/// <summary>Broken variants of a valid stream made of its own members: two swapped, one removed, one duplicated.</summary>
internal static class MemberReorderings
{
    /// <summary>
    /// <paramref name="swaps"/> swaps of two members drawn from <paramref name="rnd"/>, then every member removed and
    /// every member duplicated in place, each described for a failure message.
    /// </summary>
    public static IEnumerable<(string Description, byte[] Stream)> Of(byte[] valid, Random rnd, int swaps)
    {
        var records = TarSurgery.Records(valid);
        List<byte[]> Blocks() => records.Select(r => TarSurgery.Bytes(valid, r)).ToList();
        for (var i = 0; i < swaps; i++)
        {
            int a = rnd.Next(records.Count), b = rnd.Next(records.Count);
            if (a == b)
            {
                b = (a + 1) % records.Count;
            }

            var blocks = Blocks();
            (blocks[a], blocks[b]) = (blocks[b], blocks[a]);
            yield return ($"members {records[a].Name} and {records[b].Name} swapped", TarSurgery.Join(blocks));
        }

        for (var i = 0; i < records.Count; i++)
        {
            var blocks = Blocks();
            blocks.RemoveAt(i);
            yield return ($"member {records[i].Name} removed", TarSurgery.Join(blocks));
            blocks = Blocks();
            blocks.Insert(i, blocks[i]);
            yield return ($"member {records[i].Name} duplicated", TarSurgery.Join(blocks));
        }
    }
}
