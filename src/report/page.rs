//! The page: one HTML file holding its style, its script and its data, nothing fetched.
//!
//! The Content-Security-Policy allows the page's own `<style>` and `<script>` by their SHA-256
//! (not `'unsafe-inline'`): anything a hostile path or argv managed to inject into the markup
//! would not run, and `default-src 'none'` lets no request leave the page (no image, font, frame,
//! connection or form). The data is JSON inside `<script type="application/json">`, which is
//! never executed, with `<`, `>` and `&` escaped so no string can close the element; the script
//! inserts every piece of it as text (`textContent`), never as markup.

use base64::Engine as _;
use sha2::{Digest, Sha256};

const TEMPLATE: &str = include_str!("assets/report.html");
const STYLE: &str = include_str!("assets/report.css");
const SCRIPT: &str = include_str!("assets/report.js");

/// The policy for a page with exactly this style and script.
fn csp(style: &str, script: &str) -> String {
    let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src 'none'; base-uri 'none'; form-action 'none'",
        hash(script),
        hash(style)
    )
}

/// JSON safe inside a `<script>` element: `serde_json` only writes `<`, `>` and `&` inside
/// strings, where `\u003c` means the same to `JSON.parse`. U+2028/2029 are escaped too, for any
/// reader that takes the text for JavaScript.
pub fn embed_json(v: &serde_json::Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page for `data`.
pub fn render(data: &serde_json::Value) -> String {
    // The data goes in last, so nothing in it is ever taken for a placeholder.
    TEMPLATE
        .replacen("{{CSP}}", &csp(STYLE, SCRIPT), 1)
        .replacen("{{STYLE}}", STYLE, 1)
        .replacen("{{SCRIPT}}", SCRIPT, 1)
        .replacen("{{DATA}}", &embed_json(data), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_hostile_path_cannot_close_the_data_element() {
        let path = "/tmp/</script><img src=x onerror=alert(1)>&amp;\u{2028}";
        let page = render(&json!({ "path": path }));
        let data = page
            .split("<script type=\"application/json\" id=\"data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .expect("the data element");
        assert!(!data.contains('<') && !data.contains('>') && !data.contains('&'));
        // Still the same string to a JSON reader.
        let back: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(back["path"], path);
        assert_eq!(page.matches("<img").count(), 0);
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_own_style_and_script() {
        let page = render(&json!({}));
        let policy = csp(STYLE, SCRIPT);
        assert!(page.contains(&format!("content=\"{policy}\"")));
        assert!(policy.starts_with("default-src 'none';"));
        assert!(!policy.contains("unsafe"));
        // The hashes are of the exact text between the tags.
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
        // An edit to the script changes its hash.
        assert_ne!(csp(STYLE, "x"), policy);
    }

    #[test]
    fn the_assets_fetch_nothing_and_close_no_element_early() {
        for (name, text) in [("report.css", STYLE), ("report.js", SCRIPT)] {
            for bad in [
                "</script",
                "</style",
                "http:",
                "https:",
                "url(",
                "@import",
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "fetch(",
                "XMLHttpRequest",
                "WebSocket",
                "sendBeacon",
            ] {
                assert!(!text.contains(bad), "{name} contains {bad:?}");
            }
        }
        for placeholder in ["{{CSP}}", "{{STYLE}}", "{{SCRIPT}}", "{{DATA}}"] {
            assert_eq!(TEMPLATE.matches(placeholder).count(), 1, "{placeholder}");
        }
    }
}
