//! Static files: the demo page at `/` and the wasm-pack output at `/pkg/`.

use std::path::Path;

use axum::http::{header, HeaderValue};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeader;

/// A directory served as is (with `index.html` for directories), each answer marked
/// `Cache-Control: no-cache`: browsers revalidate (a cheap 304) instead of mixing a stale
/// `.wasm` with freshly rebuilt JavaScript glue after `wasm-pack build`.
pub(crate) type StaticDir = SetResponseHeader<ServeDir, HeaderValue>;

/// Serves `dir` at the root of the mount point `prefix` (`""` for `/`, `"/pkg"` for
/// `/pkg/`; used for the trailing-slash redirect of directories).
pub(crate) fn serve_dir(dir: &Path, prefix: &str) -> StaticDir {
    let files = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .redirect_path_prefix(prefix);
    SetResponseHeader::overriding(
        files,
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    )
}
