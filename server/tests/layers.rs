//! The server's files import one another one way: no file reaches itself through its imports.
//!
//! Run it with `cargo test -p server --test layers`. It reads `server/src` as text: every
//! `use crate::…`, `use super::…` and inline `crate::…`/`super::…` path, resolved to the file of
//! the longest module it names, and a parent's `child::…` paths into a child it declares. A
//! re-exporting `mod.rs` counts as depending on its children, so a file low in the layers imports
//! what it needs by its deep path (`crate::auth::identity::AuthUser`). Unit tests (`#[cfg(test)]`
//! onwards) are left out. On a cycle it prints the files and every import that ties them.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("server/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `lib.rs` and `main.rs` → the root.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The code of a file without comments, string literals and its unit tests.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut code = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                code.push_str("\"\"");
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            _ => code.push(c),
        }
    }
    code
}

/// The paths of one `use` tree: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Module>) {
    let mut depth = 0;
    let mut item = String::new();
    let mut items = Vec::new();
    for c in tree.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    for item in items {
        let item: String = item.split_whitespace().collect::<Vec<_>>().join(" ");
        if item.is_empty() {
            continue;
        }
        if let (Some(open), true) = (item.find('{'), item.ends_with('}')) {
            let mut path = prefix.to_vec();
            path.extend(segments(&item[..open]));
            expand(&path, &item[open + 1..item.len() - 1], out);
        } else {
            let item = item.split(" as ").next().unwrap_or_default();
            let mut path = prefix.to_vec();
            path.extend(segments(item));
            out.push(path);
        }
    }
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The file a path names: the longest module it starts with, relative to `at`.
fn resolve(at: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let mut full = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => {
            let mut base = at.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            return longest(base, modules);
        }
        Some("self") => at.clone(),
        _ => return None,
    };
    full.extend(path[1..].iter().cloned());
    longest(full, modules)
}

fn longest(path: Module, modules: &BTreeSet<Module>) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every file's imports: module → (imported module → the paths that import it).
fn imports(src: &Path) -> BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let at = module_of(src, file);
        let code = code_of(&fs::read_to_string(file).expect("a source file"));
        let mut paths = Vec::new();
        let mut rest = code.as_str();
        let mut without_uses = String::new();
        while let Some(start) = rest.find("use ") {
            let starts_word = rest[..start].chars().last().is_none_or(|c| !is_ident(c));
            let Some(end) = rest[start..].find(';').map(|e| start + e) else {
                break;
            };
            let tree = rest[start + 4..end].trim();
            if starts_word
                && ["crate", "super", "self"]
                    .iter()
                    .any(|r| tree.starts_with(r))
            {
                expand(&[], tree, &mut paths);
                without_uses.push_str(&rest[..start]);
            } else {
                without_uses.push_str(&rest[..end + 1]);
            }
            rest = &rest[end + 1..];
        }
        without_uses.push_str(rest);
        // Inline paths (`crate::a::b(…)`), and a parent's `child::x` into a child it declares.
        let words: Vec<char> = without_uses.chars().collect();
        let mut i = 0;
        while i < words.len() {
            if (i == 0 || !is_ident(words[i - 1])) && is_ident(words[i]) {
                let mut j = i;
                while j < words.len() && (is_ident(words[j]) || words[j] == ':') {
                    j += 1;
                }
                let path: String = words[i..j].iter().collect();
                let path = path.trim_end_matches(':');
                if path.contains("::") {
                    let parts: Vec<String> = segments(path).collect();
                    if matches!(parts[0].as_str(), "crate" | "super") {
                        paths.push(parts);
                    } else {
                        let mut child = at.clone();
                        child.push(parts[0].clone());
                        if modules.contains(&child) {
                            paths.push(std::iter::once("self".to_owned()).chain(parts).collect());
                        }
                    }
                }
                i = j;
            } else {
                i += 1;
            }
        }
        let mut edges: BTreeMap<Module, BTreeSet<String>> = BTreeMap::new();
        for path in paths {
            if let Some(target) = resolve(&at, &path, &modules).filter(|t| *t != at) {
                edges.entry(target).or_default().insert(path.join("::"));
            }
        }
        graph.insert(at, edges);
    }
    graph
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "lib".to_owned()
    } else {
        module.join("/")
    }
}

/// The strongly connected groups of more than one file (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>>) -> Vec<Vec<Module>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph[v].keys() {
                let Some((w, _)) = self.graph.get_key_value(w) else {
                    continue;
                };
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    group.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_server_file_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&src);
    assert!(graph.len() > 40, "read {} files", graph.len());
    let found = cycles(&graph);
    let mut report = String::new();
    for group in &found {
        report.push_str(&format!("\ncycle of {} files:\n", group.len()));
        for a in group {
            for (b, paths) in &graph[a] {
                if group.contains(b) {
                    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                    report.push_str(&format!(
                        "  {} -> {}: {}\n",
                        name(a),
                        name(b),
                        paths.join(", ")
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "imports run in a circle:{report}");
}

#[test]
fn only_handlers_and_start_up_take_the_app_state() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let code = code_of(&fs::read_to_string(&file).expect("a source file"));
        for signature in code.split("fn ").skip(1) {
            let Some(params) = signature.split('{').next() else {
                continue;
            };
            // A parameter of type `AppState`/`&AppState`; an extractor `State<AppState>` is a
            // handler's, and `Router<AppState>` a route table's.
            let takes_state = params
                .split(&['(', ',', ')'][..])
                .filter_map(|p| p.split_once(':').map(|(_, ty)| ty.trim()))
                .any(|ty| ty == "AppState" || ty == "&AppState" || ty == "&'a AppState");
            if takes_state {
                let name: String = signature.chars().take_while(|c| is_ident(*c)).collect();
                offenders.push(format!("{}: {name}", file.display()));
            }
        }
    }
    // `AppState`'s own impls (state.rs: `FromRef`) and the route tables built from it at
    // start-up are the state's, not a lower layer's.
    offenders.retain(|o| {
        !o.contains("state.rs: ")
            && !o.contains("startup.rs: router")
            && !o.contains("web.rs: routes")
    });
    assert!(
        offenders.is_empty(),
        "functions below the handlers take AppState: {offenders:#?}"
    );
}
