//! Where the SDKs find the token the pod gets.

/// The file name inside the web identity token volume.
pub const TOKEN_FILE_NAME: &str = "token";

/// The token file the SDKs read. Windows containers see the mount under `C:`
/// with backslashes, as the official webhook writes it.
pub fn token_file(mount_path: &str, path: &str, windows: bool) -> String {
    if windows {
        format!("C:{}\\{path}", mount_path.replace('/', "\\"))
    } else {
        format!("{mount_path}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_token_file_uses_drive_and_backslashes() {
        let path = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
        assert_eq!(
            token_file(path, TOKEN_FILE_NAME, false),
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        );
        assert_eq!(
            token_file(path, TOKEN_FILE_NAME, true),
            r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token"
        );
    }
}
