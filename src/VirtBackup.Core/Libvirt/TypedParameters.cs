using System.Runtime.InteropServices;

namespace VirtBackup.Core.Libvirt;

/// <summary>Copies a <c>virTypedParameter</c> array into managed values (the caller frees the array).</summary>
internal static unsafe class TypedParameters
{
    private const int Int = 1, UInt = 2, LLong = 3, ULLong = 4, Double = 5, Boolean = 6, String = 7;

    public static Dictionary<string, object> Read(LibvirtNative.VirTypedParameter* parameters, int count)
    {
        var values = new Dictionary<string, object>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var parameter = &parameters[i];
            var name = Marshal.PtrToStringUTF8((nint)parameter->Field) ?? string.Empty;
            var raw = parameter->Value;
            object? value = parameter->Type switch
            {
                Int => (int)raw,
                UInt => (uint)raw,
                LLong => raw,
                ULLong => (ulong)raw,
                Double => BitConverter.Int64BitsToDouble(raw),
                Boolean => (byte)raw != 0,
                String => raw == 0 ? string.Empty : Marshal.PtrToStringUTF8((nint)raw),
                _ => null, // a type newer than this code: leave it out rather than guess
            };
            if (value is not null)
            {
                values[name] = value;
            }
        }

        return values;
    }
}
