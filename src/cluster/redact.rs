//! Scrubbing what librdkafka says before it is logged: Entra ID access tokens (JWTs) change
//! every refresh, so they are recognised by their shape rather than listed as secrets.

/// `text` with every JWT (`eyJ...` base64url segments joined by dots) replaced by `***`.
pub fn jwts(text: &str) -> String {
    if !text.contains("eyJ") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')))
            .unwrap_or(tail.len());
        out.push_str("***");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::jwts;

    #[test]
    fn replaces_every_token_and_keeps_the_rest() {
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(
            jwts(&format!("auth=Bearer {t}, done")),
            "auth=Bearer ***, done"
        );
        assert_eq!(jwts(&format!("{t} {t}")), "*** ***");
        assert_eq!(jwts("nothing here"), "nothing here");
    }
}
