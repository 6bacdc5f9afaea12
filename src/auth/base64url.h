// base64url without padding (RFC 4648 section 5), as JOSE uses it (RFC 7515 section 2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace balanced::auth {

std::string base64url_encode(std::string_view bytes);
// nullopt on a character outside the alphabet, padding, an impossible length (4k+1),
// or non-zero bits left over in the last character (a second spelling of the same bytes).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace balanced::auth
