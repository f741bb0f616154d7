//! The AWS error codes that mean the caller's credentials or permissions are wrong:
//! retrying does not help, a change of configuration does.

pub const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
];

/// Whether an error's code (from the SDK's error metadata) is one of those.
pub fn is_access_denied(code: Option<&str>) -> bool {
    code.is_some_and(|code| ACCESS_DENIED_CODES.contains(&code))
}
