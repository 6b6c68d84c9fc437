//! `airlock serve --ui ADDR` (issue 17): the dashboard inside a running server.
//! MCP on stdio keeps a clean stdout (the login link goes to stderr), the link
//! logs in once, and a call the agent makes through this very server shows in
//! the dashboard's record view.

use super::*;

/// What a `serve --ui` printed on stderr: the dashboard's address, its one-time
/// login token (from the link's fragment), and the rest of stderr once the
/// server has exited.
fn dashboard_link(child: &mut Child) -> (String, String, std::thread::JoinHandle<String>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    for _ in 0..10 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some((url, token)) = line.trim().split_once("/login#token=") {
            let a = url.trim_start_matches("http://").to_string();
            let rest = std::thread::spawn(move || {
                let mut s = String::new();
                err.read_to_string(&mut s).ok();
                s
            });
            return (a, token.to_string(), rest);
        }
    }
    panic!("serve --ui printed no login link on stderr");
}

/// Logs in with the one-time token; the HTTP status and the session cookie.
fn login(addr: &str, token: &str) -> (u16, Option<String>) {
    let body = format!("token={token}");
    let resp = raw_http(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cookie = resp
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    (status, cookie)
}

fn get(addr: &str, path: &str, cookie: &str) -> String {
    raw_http(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    )
}

#[test]
fn serve_ui_runs_the_dashboard_beside_mcp_on_stdio() {
    let upstream = Upstream::start(reflect);
    let (_dir, home) = setup(&upstream);
    let mut child = spawn_stdio(
        serve_cmd(&home, &["--agent", "tester", "--ui", "127.0.0.1:0"]),
        Stdio::piped(),
    );
    let (addr, login_token, rest) = dashboard_link(&mut child);
    // stdout is the MCP channel: the first thing on it is the answer to
    // `initialize` (Server::initialized asserts it), nothing the dashboard printed.
    let mut s = Server::initialized(child, "claude-desktop");
    let (is_error, text) = s.execute("mine", "GET", "/v1/customers");
    assert!(!is_error, "{text}");

    // Without a session: no page.
    let anon = get(&addr, "/", "airlock_ui=nothing");
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    // The link logs in once.
    let (status, cookie) = login(&addr, &login_token);
    assert_eq!(status, 204, "login answered {status}");
    let cookie = cookie.expect("login set no cookie");
    assert_eq!(
        login(&addr, &login_token).0,
        403,
        "the login link worked twice"
    );

    // The agent's call, made through this server, is in the dashboard.
    let seq = records(&home)
        .iter()
        .rev()
        .find(|r| r["path"] == "/v1/customers" && r["decision"] == "allow")
        .and_then(|r| r["seq"].as_u64())
        .expect("no audit record of the call");
    let page = get(&addr, &format!("/record/{seq}"), &cookie);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("/v1/customers"), "{page}");
    drop(s.stdin);
    assert!(s.child.wait().unwrap().success());
    let stderr = rest.join().unwrap();
    assert!(
        !stderr.contains(&login_token),
        "the login token was printed again: {stderr}"
    );
}

#[test]
fn serve_ui_on_a_busy_port_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(airlock(&home, &["init"], &[]).status.success());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = serve_cmd(
        &home,
        &[
            "--gateway",
            "127.0.0.1:0",
            "--ui",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}
