# Flatten a JSON document into one line per scalar: "<path><TAB><value>", the path made of
# object keys and array indexes joined with "." (e.g. "uuid", "public_keys.mykey",
# "keys.0.data"). Strings are unescaped (\n, \r and \t become spaces, \uXXXX above 0x7f
# becomes "?"), then trimmed; numbers/true/false/null are printed as written.
# Small enough for busybox awk; used by the tiny guest's /sbin/init on meta_data.json.
BEGIN { RS = "\001" }
{ s = s $0 }
function cur(   p, d) {
  p = ""
  for (d = 1; d <= depth; d++) p = p (d > 1 ? "." : "") k[d]
  return p
}
function hexval(h,   i, v, c) {
  v = 0
  for (i = 1; i <= length(h); i++) {
    c = index("0123456789abcdef", tolower(substr(h, i, 1)))
    if (c == 0) return 63
    v = v * 16 + c - 1
  }
  return v
}
function emit(v) {
  sub(/^[ ]+/, "", v); sub(/[ ]+$/, "", v)
  print cur() "\t" v
}
END {
  n = length(s); i = 1; depth = 0; wantkey = 0
  while (i <= n) {
    c = substr(s, i, 1)
    if (c == "{") { depth++; t[depth] = "o"; k[depth] = ""; wantkey = 1; i++ }
    else if (c == "[") { depth++; t[depth] = "a"; k[depth] = 0; wantkey = 0; i++ }
    else if (c == "}" || c == "]") { depth--; i++ }
    else if (c == ",") { if (t[depth] == "a") k[depth]++; else wantkey = 1; i++ }
    else if (c == ":") { wantkey = 0; i++ }
    else if (c == "\"") {
      v = ""; i++
      while (i <= n) {
        c = substr(s, i, 1)
        if (c == "\"") { i++; break }
        if (c == "\\") {
          e = substr(s, i + 1, 1); i += 2
          if (e == "n" || e == "r" || e == "t") v = v " "
          else if (e == "u") { h = hexval(substr(s, i, 4)); i += 4; v = v (h < 128 && h >= 32 ? sprintf("%c", h) : (h < 32 ? " " : "?")) }
          else if (e == "b" || e == "f") v = v " "
          else v = v e
          continue
        }
        v = v c; i++
      }
      if (t[depth] == "o" && wantkey) k[depth] = v
      else emit(v)
    }
    else if (index(" \t\r\n", c)) i++
    else {
      v = ""
      while (i <= n) { c = substr(s, i, 1); if (index(",}] \t\r\n", c)) break; v = v c; i++ }
      emit(v)
    }
  }
}
