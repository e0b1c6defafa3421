// A small JSON reader and writer, so the client needs nothing beyond the base class library
// (mscorlib, System, System.Core): no NuGet, no System.Runtime.Serialization.
//
//   object value = Json.Parse("{\"a\": [1, 2.5, \"x\", true, null]}");
//   string text = Json.Write(new Dictionary<string, object> { { "a", 1 } });
//
// Parsed values: Dictionary<string, object> for objects, List<object> for arrays, string, long for
// integers that fit (double otherwise), bool, and null. Numbers are read and written with the
// invariant culture, so a game running in a German or French locale still sends "1.5".
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Daydream
{
    /// <summary>The text was not valid JSON.</summary>
    public class JsonException : FormatException
    {
        public JsonException(string message) : base(message) { }
    }

    public static class Json
    {
        public static object Parse(string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            var reader = new Reader(text);
            reader.SkipSpace();
            object value = reader.ReadValue(0);
            reader.SkipSpace();
            if (!reader.AtEnd) throw reader.Error("unexpected text after the value");
            return value;
        }

        public static string Write(object value)
        {
            var sb = new StringBuilder();
            WriteValue(sb, value, 0);
            return sb.ToString();
        }

        const int MaxDepth = 128;

        static void WriteValue(StringBuilder sb, object value, int depth)
        {
            if (depth > MaxDepth) throw new ArgumentException("JSON value nested too deeply (a cycle?)");
            if (value == null) { sb.Append("null"); return; }
            var s = value as string;
            if (s != null) { WriteString(sb, s); return; }
            if (value is bool) { sb.Append((bool)value ? "true" : "false"); return; }
            if (value is char) { WriteString(sb, value.ToString()); return; }
            if (value is int || value is long || value is short || value is byte || value is sbyte
                || value is uint || value is ulong || value is ushort)
            {
                sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                return;
            }
            if (value is double || value is float || value is decimal)
            {
                double d = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (double.IsNaN(d) || double.IsInfinity(d))
                    throw new ArgumentException("JSON has no NaN or infinity");
                sb.Append(d.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            var writable = value as IJsonWritable;
            if (writable != null) { WriteValue(sb, writable.ToJson(), depth + 1); return; }
            var dict = value as IDictionary;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry entry in dict)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, Convert.ToString(entry.Key, CultureInfo.InvariantCulture));
                    sb.Append(':');
                    WriteValue(sb, entry.Value, depth + 1);
                }
                sb.Append('}');
                return;
            }
            var list = value as IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (object item in list)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteValue(sb, item, depth + 1);
                }
                sb.Append(']');
                return;
            }
            throw new ArgumentException("cannot write a " + value.GetType().Name + " as JSON");
        }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20 || c == '\u2028' || c == '\u2029')
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else
                            sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }

        sealed class Reader
        {
            readonly string text;
            int pos;

            public Reader(string text) { this.text = text; }

            public bool AtEnd { get { return pos >= text.Length; } }

            public JsonException Error(string what)
            {
                return new JsonException("invalid JSON at character " + pos + ": " + what);
            }

            public void SkipSpace()
            {
                while (pos < text.Length)
                {
                    char c = text[pos];
                    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
                    pos++;
                }
            }

            char Peek()
            {
                if (pos >= text.Length) throw Error("unexpected end");
                return text[pos];
            }

            void Expect(string word)
            {
                if (string.CompareOrdinal(text, pos, word, 0, word.Length) != 0) throw Error("expected " + word);
                pos += word.Length;
            }

            public object ReadValue(int depth)
            {
                if (depth > MaxDepth) throw Error("nested too deeply");
                char c = Peek();
                switch (c)
                {
                    case '{': return ReadObject(depth);
                    case '[': return ReadArray(depth);
                    case '"': return ReadString();
                    case 't': Expect("true"); return true;
                    case 'f': Expect("false"); return false;
                    case 'n': Expect("null"); return null;
                    default:
                        if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber();
                        throw Error("unexpected '" + c + "'");
                }
            }

            Dictionary<string, object> ReadObject(int depth)
            {
                var result = new Dictionary<string, object>();
                pos++;  // {
                SkipSpace();
                if (Peek() == '}') { pos++; return result; }
                while (true)
                {
                    SkipSpace();
                    if (Peek() != '"') throw Error("expected a key");
                    string key = ReadString();
                    SkipSpace();
                    if (Peek() != ':') throw Error("expected ':'");
                    pos++;
                    SkipSpace();
                    result[key] = ReadValue(depth + 1);
                    SkipSpace();
                    char c = Peek();
                    pos++;
                    if (c == '}') return result;
                    if (c != ',') { pos--; throw Error("expected ',' or '}'"); }
                }
            }

            List<object> ReadArray(int depth)
            {
                var result = new List<object>();
                pos++;  // [
                SkipSpace();
                if (Peek() == ']') { pos++; return result; }
                while (true)
                {
                    SkipSpace();
                    result.Add(ReadValue(depth + 1));
                    SkipSpace();
                    char c = Peek();
                    pos++;
                    if (c == ']') return result;
                    if (c != ',') { pos--; throw Error("expected ',' or ']'"); }
                }
            }

            string ReadString()
            {
                pos++;  // opening quote
                var sb = new StringBuilder();
                while (true)
                {
                    if (pos >= text.Length) throw Error("unterminated string");
                    char c = text[pos++];
                    if (c == '"') return sb.ToString();
                    if (c < 0x20) { pos--; throw Error("control character in a string"); }
                    if (c != '\\') { sb.Append(c); continue; }
                    if (pos >= text.Length) throw Error("unterminated string");
                    char e = text[pos++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            if (pos + 4 > text.Length) throw Error("short \\u escape");
                            int code;
                            if (!int.TryParse(text.Substring(pos, 4), NumberStyles.AllowHexSpecifier,
                                    CultureInfo.InvariantCulture, out code))
                                throw Error("bad \\u escape");
                            sb.Append((char)code);  // surrogate pairs come as two escapes: kept as is
                            pos += 4;
                            break;
                        default:
                            pos--;
                            throw Error("bad escape \\" + e);
                    }
                }
            }

            object ReadNumber()
            {
                int start = pos;
                if (text[pos] == '-') pos++;
                bool isInteger = true;
                while (pos < text.Length)
                {
                    char c = text[pos];
                    if (c >= '0' && c <= '9') { pos++; continue; }
                    if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { isInteger = false; pos++; continue; }
                    break;
                }
                string number = text.Substring(start, pos - start);
                long whole;
                if (isInteger && long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out whole))
                    return whole;
                double d;
                if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out d))
                    return d;
                pos = start;
                throw Error("bad number '" + number + "'");
            }
        }
    }

    /// <summary>A value that writes itself as a JSON-ready object (dictionaries, lists, strings, numbers).</summary>
    public interface IJsonWritable
    {
        object ToJson();
    }

    /// <summary>Typed reads from a parsed JSON object, tolerant of missing keys and integer/float mixing.</summary>
    public static class JsonObject
    {
        public static Dictionary<string, object> AsObject(object value, string what)
        {
            var obj = value as Dictionary<string, object>;
            if (obj == null) throw new JsonException("expected a JSON object for " + what);
            return obj;
        }

        public static object Get(Dictionary<string, object> obj, string key)
        {
            object value;
            return obj != null && obj.TryGetValue(key, out value) ? value : null;
        }

        public static string GetString(Dictionary<string, object> obj, string key)
        {
            object value = Get(obj, key);
            if (value == null) return null;
            var s = value as string;
            return s ?? Convert.ToString(value, CultureInfo.InvariantCulture);
        }

        public static long GetLong(Dictionary<string, object> obj, string key, long fallback = 0)
        {
            object value = Get(obj, key);
            if (value is long) return (long)value;
            if (value is double) return (long)(double)value;
            return fallback;
        }

        public static double GetDouble(Dictionary<string, object> obj, string key, double fallback = 0)
        {
            object value = Get(obj, key);
            if (value is long) return (long)value;
            if (value is double) return (double)value;
            return fallback;
        }

        public static Dictionary<string, long> GetCounts(Dictionary<string, object> obj, string key)
        {
            var result = new Dictionary<string, long>();
            var inner = Get(obj, key) as Dictionary<string, object>;
            if (inner == null) return result;
            foreach (var pair in inner)
            {
                if (pair.Value is long) result[pair.Key] = (long)pair.Value;
                else if (pair.Value is double) result[pair.Key] = (long)(double)pair.Value;
            }
            return result;
        }
    }
}
