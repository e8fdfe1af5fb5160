#pragma once
// Private to kiln/track: HTML escaping, the colour palette and the page frame (inline CSS + JS)
// shared by report.cpp and chart.cpp.
#include <string>
#include <string_view>

namespace kiln::track {

/// & < > " ' escaped for text and attribute values.
std::string html_escape(std::string_view s);
/// A colour for series i (Tableau 10, readable on white).
const char* series_color(size_t i);
/// The whole document: <head> with the styles and script, a top bar with the navigation
/// (server pages only), then `body`.
std::string html_page(const std::string& title, const std::string& body, bool single_file,
                      const std::string& active_tab, const std::string& subtitle);

}  // namespace kiln::track
