#pragma once
// Text from files and users made safe to quote in a one-line error message. A crafted file must
// not be able to put raw bytes (ANSI escape sequences, invalid UTF-8, line breaks) into the
// user's terminal through an error, and a huge field must not flood it.
#include <cstddef>
#include <string>
#include <string_view>

namespace nt {

// Valid UTF-8 text is kept; control characters (C0, DEL, C1), bidirectional overrides and bytes
// that are not valid UTF-8 become escapes: "\n", "\r", "\t", "\x1b", "\xff", "\u009b". Backslashes
// are left as they are, so escaping a message twice changes nothing. Output longer than
// `max_len` bytes is cut at a character boundary and ends in "…" (the default leaves room for
// a JSON parser's whole message).
std::string escape_for_message(std::string_view text, size_t max_len = 400);

// escape_for_message in single quotes: 'text'.
std::string quote_for_message(std::string_view text, size_t max_len = 80);

}  // namespace nt
