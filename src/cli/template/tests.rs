use super::*;

#[test]
fn docker_templates() {
    let item = serde_json::json!({
        "State": { "Status": "running", "Pid": 42 },
        "Config": { "Labels": { "team": "a" }, "Env": ["A=1", "B=2"] },
    });
    let render = |t: &str| Format::parse(t).unwrap().render(&item).unwrap();
    assert_eq!(render("{{.State.Status}}"), "running");
    assert_eq!(render("{{.State.Pid}}"), "42");
    assert_eq!(render(r#"{{index .Config.Labels "team"}}"#), "a");
    assert_eq!(render("{{range .Config.Env}}{{.}};{{end}}"), "A=1;B=2;");
    assert_eq!(render("{{json .Config.Labels}}"), r#"{"team":"a"}"#);
    assert!(Format::parse("{{.State").is_err());
}

/// `inspect -f` over an item as lade's (and Docker's) inspect JSON holds it.
fn inspect(template: &str, item: &Json) -> String {
    Format::parse(template).unwrap().render(item).unwrap()
}

#[test]
fn values_print_as_go_prints_them() {
    let item = serde_json::json!({
        "Config": {
            "Env": ["PATH=/usr/sbin:/usr/bin", "A=1"],
            "Labels": { "c": "d", "a": "b" },
            "Cmd": null,
            "Tty": false,
        },
        "State": { "Pid": 42, "ExitCode": -1, "Running": true },
        "Size": 18446744073709551615u64,
        "Ratio": 1.5,
        "Whole": 2.0,
        "Huge": 1e21,
        "Tiny": 0.00001,
        "Negative": -1.5,
        "Small": 0.0001,
        "Mixed": [1, "x", null, [true], { "k": 2 }],
    });
    let print = |t: &str| inspect(t, &item);
    assert_eq!(print("{{.Config.Env}}"), "[PATH=/usr/sbin:/usr/bin A=1]");
    assert_eq!(print("{{.Config.Labels}}"), "map[a:b c:d]");
    assert_eq!(print("{{.Config.Cmd}}"), "<nil>");
    assert_eq!(print("{{.Config.Missing}}"), "<no value>");
    assert_eq!(print("{{.Config.Tty}} {{.State.Running}}"), "false true");
    assert_eq!(print("{{.State.Pid}} {{.State.ExitCode}}"), "42 -1");
    assert_eq!(print("{{.Size}}"), "18446744073709551615");
    assert_eq!(print("{{.Ratio}} {{.Whole}} {{.Negative}}"), "1.5 2 -1.5");
    assert_eq!(
        print("{{.Huge}} {{.Tiny}} {{.Small}}"),
        "1e+21 1e-05 0.0001"
    );
    assert_eq!(print("{{.Mixed}}"), "[1 x <nil> [true] map[k:2]]");
    assert_eq!(print("{{.State}}"), "map[ExitCode:-1 Pid:42 Running:true]");
    // print, println and printf's %v print values the same way.
    assert_eq!(
        print("{{print .Config.Env}}"),
        "[PATH=/usr/sbin:/usr/bin A=1]"
    );
    assert_eq!(print("{{print 1 2 \"a\" 3 \"b\"}}"), "1 2a3b");
    assert_eq!(
        print(r#"{{println "a" 1 .Config.Labels}}"#),
        "a 1 map[a:b c:d]\n"
    );
    assert_eq!(
        print(r#"{{printf "%v|%s|%v|%v" .Config.Env .Config.Labels .Ratio .Config.Cmd}}"#),
        "[PATH=/usr/sbin:/usr/bin A=1]|map[a:b c:d]|1.5|<nil>"
    );
    // Docker's documented `println` use: one value a line.
    let networks = serde_json::json!({ "NetworkSettings": { "Networks": {
        "bridge": { "IPAddress": "172.17.0.2" }, "web": { "IPAddress": "10.0.0.2" },
    } } });
    assert_eq!(
        inspect(
            "{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}",
            &networks
        ),
        "172.17.0.2\n10.0.0.2\n"
    );
    // Go ranges over a map in key order, and `{{else}}` only when there is nothing.
    assert_eq!(
        print("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{else}}none{{end}}"),
        "a=b;c=d;"
    );
    assert_eq!(print("{{range .Config.Cmd}}x{{else}}none{{end}}"), "none");
    assert_eq!(print("{{range .Config.Env}}x{{else}}none{{end}}"), "xx");
}

#[test]
fn json_is_compact_and_leaves_html_alone() {
    let item = serde_json::json!({
        "Ports": "0.0.0.0:2->8/udp",
        "Mounts": [{ "Type": "bind", "Source": "/a&b" }],
        "Note": "a\u{2028}b",
    });
    // docker/cli templates_test.go TestParseJSONFunctions.
    assert_eq!(inspect("{{json .Ports}}", &item), r#""0.0.0.0:2->8/udp""#);
    assert_eq!(
        inspect("{{json .Mounts}}", &item),
        r#"[{"Source":"/a&b","Type":"bind"}]"#
    );
    assert_eq!(inspect("{{json .Note}}", &item), r#""a\u2028b""#);
    assert_eq!(inspect("{{json .Missing}}", &item), "null");
}

#[test]
fn string_functions_are_dockers() {
    let item = serde_json::json!({
        "Path": "text:with:colon",
        "Image": "ubuntu:22.04",
        "Name": "/web_server-1",
        "ID": "tupx5xzf6hvsrhnruz5cr8gwp",
        "Empty": "",
        "Args": ["-c", "echo hi"],
        "Labels": { "b": "2", "a": "1" },
        "Cmd": null,
        "Count": 3,
    });
    let print = |t: &str| inspect(t, &item);
    // docker/cli templates_test.go TestParseStringFunctions and TestParseTruncateFunction.
    assert_eq!(
        print(r#"{{join (split .Path ":") "/"}}"#),
        "text/with/colon"
    );
    assert_eq!(print("{{truncate .ID 5}}"), "tupx5");
    assert_eq!(print("{{truncate .ID 25}}"), "tupx5xzf6hvsrhnruz5cr8gwp");
    assert_eq!(print("{{truncate .ID 30}}"), "tupx5xzf6hvsrhnruz5cr8gwp");
    assert_eq!(print("{{pad .ID 3 3}}"), "   tupx5xzf6hvsrhnruz5cr8gwp   ");
    assert_eq!(print("[{{truncate .Empty 5}}][{{pad .Empty 3 3}}]"), "[][]");
    // docker/cli formatter container_test.go: `{{split .Image ":"}}` is an array.
    assert_eq!(print(r#"{{split .Image ":"}}"#), "[ubuntu 22.04]");
    assert_eq!(print(r#"{{split "abc" ""}}"#), "[a b c]");
    assert_eq!(print(r#"{{join .Args " , "}}"#), "-c , echo hi");
    assert_eq!(print(r#"{{join .Labels ","}}"#), "1,2");
    assert_eq!(print(r#"[{{join .Cmd ","}}]"#), "[]");
    assert_eq!(
        print("{{upper .Name}} {{lower \"MiXeD\"}}"),
        "/WEB_SERVER-1 mixed"
    );
    // Go's strings.Title: letters, digits and `_` are inside a word.
    assert_eq!(print("{{title .Name}}"), "/Web_server-1");
    assert_eq!(
        print(r#"{{title "hello wORLD 1a b.c"}}"#),
        "Hello WORLD 1a B.C"
    );
    assert_eq!(print(r#"{{upper "straße"}}"#), "STRAßE");
    assert_eq!(print(r#"{{truncate "héllo" 2}}"#), "h");
    for (template, error) in [
        ("{{upper .Count}}", "upper: expected a string, got a number"),
        (
            r#"{{join .Name ","}}"#,
            "join: expected an array, got a string",
        ),
        (
            "{{truncate .ID -1}}",
            "truncate: the length must not be negative",
        ),
        (
            "{{pad .ID 99999999 0}}",
            "pad: a count must be between 0 and 65535",
        ),
        ("{{pad .ID 1}}", "pad requires exactly 3 argument(s)"),
    ] {
        let message = Format::parse(template)
            .unwrap()
            .render(&item)
            .unwrap_err()
            .to_string();
        assert!(message.contains(error), "{template}: {message}");
    }
}

/// A listing through `--format`, as it prints.
fn listing(format: &str, headers: &[(&str, &str)], rows: &[Json]) -> String {
    match ListFormat::parse_with_headers(format, headers).unwrap() {
        ListFormat::Table => "<default table>".into(),
        ListFormat::Json => rows
            .iter()
            .map(|r| format!("{}\n", listing_json(r)))
            .collect(),
        ListFormat::Template(template) => rows
            .iter()
            .map(|r| format!("{}\n", template.render(r).unwrap()))
            .collect(),
        ListFormat::CustomTable(table) => table.render(rows).unwrap(),
    }
}

/// The containers of docker/cli's formatter container_test.go.
fn containers() -> Vec<Json> {
    ["foobar_baz", "foobar_bar"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            serde_json::json!({
                "ID": format!("containerID{}", i + 1), "Image": "ubuntu",
                "Command": "\"\"", "RunningFor": "24 hours ago", "Status": "",
                "Ports": "", "Names": name, "State": "running", "Size": "0B",
            })
        })
        .collect()
}

const PS: &[(&str, &str)] = &[("ID", "CONTAINER ID")];

#[test]
fn tables_are_dockers() {
    let rows = containers();
    // docker/cli container_test.go TestContainerContextWrite, column for column.
    assert_eq!(
        listing(
            r"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
            PS,
            &rows
        ),
        "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES\n\
         containerID1   ubuntu    \"\"        24 hours ago                       foobar_baz\n\
         containerID2   ubuntu    \"\"        24 hours ago                       foobar_bar\n"
    );
    assert_eq!(
        listing("table {{.Image}}", PS, &rows),
        "IMAGE\nubuntu\nubuntu\n"
    );
    assert_eq!(
        listing("table {{.State}}", PS, &rows),
        "STATE\nrunning\nrunning\n"
    );
    assert_eq!(
        listing(r#"table {{split .Image ":"}}"#, PS, &rows),
        "IMAGE\n[ubuntu]\n[ubuntu]\n"
    );
    // testdata/container-context-write-special-headers.golden: header functions
    // leave a column's name whole, `pad` pads it.
    assert_eq!(
        listing(
            r"table {{truncate .ID 5}}\t{{json .Image}} {{.RunningFor}}/{{title .Status}}/{{pad .Ports 2 2}}.{{upper .Names}} {{lower .Status}}",
            PS,
            &rows
        ),
        "CONTAINER ID   IMAGE CREATED/STATUS/  PORTS  .NAMES STATUS\n\
         conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAZ \n\
         conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAR \n"
    );
    // TestContainerContextWriteWithNoContainers: the header alone.
    assert_eq!(
        listing(r"table {{.Image}}\t{{.Size}}", PS, &[]),
        "IMAGE     SIZE\n"
    );
    assert_eq!(listing("table {{.Image}}", PS, &[]), "IMAGE\n");
    // docker image ls's documented header; names Docker shares need no caller map.
    let image = serde_json::json!({ "ID": "77af4d6b9913", "Repository": "<none>",
        "Tag": "<none>", "CreatedSince": "2 days ago", "CreatedAt": "x" });
    assert_eq!(
        listing(
            r"table {{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.CreatedSince}}",
            &[("ID", "IMAGE ID")],
            std::slice::from_ref(&image)
        ),
        "IMAGE ID       REPOSITORY   TAG       CREATED\n\
         77af4d6b9913   <none>       <none>    2 days ago\n"
    );
    // A field no row has is still named; without a caller's map, upper-cased.
    assert_eq!(
        listing(r"table {{.ID}}\t{{.CreatedAt}}\t{{.Nope}}", &[], &[]),
        "ID        CREATED AT   NOPE\n"
    );
    // `table` alone is the caller's default table; `table` needs no space after it.
    assert_eq!(listing("table", PS, &rows), "<default table>");
    assert_eq!(
        listing("table{{.Names}}", PS, &rows),
        "NAMES\nfoobar_baz\nfoobar_bar\n"
    );
}

#[test]
fn listing_templates_take_typed_escapes() {
    let rows = containers();
    // Docker turns `\t` and `\n` typed in single quotes into tab and line break,
    // and drops the spaces around the template.
    assert_eq!(
        listing(r"  {{.Names}}\t{{.State}}\n ", PS, &rows[..1]),
        "foobar_baz\trunning\n\n"
    );
}

#[test]
fn json_listings_print_one_object_a_line() {
    let rows = vec![
        serde_json::json!({ "Names": "a", "Labels": { "z": "1", "m": "<&>" } }),
        serde_json::json!({ "Names": "b", "Ports": [] }),
    ];
    assert_eq!(
        listing("json", PS, &rows),
        "{\"Labels\":{\"m\":\"\\u003c\\u0026\\u003e\",\"z\":\"1\"},\"Names\":\"a\"}\n\
         {\"Names\":\"b\",\"Ports\":[]}\n"
    );
}

#[test]
fn columns_align_as_tabwriter_does() {
    // A line without tabs ends the block of aligned lines, as in Go's tabwriter.
    assert_eq!(
        align("a\tb\nlonger cell\tc\nplain\nx\ty\n").unwrap(),
        "a             b\nlonger cell   c\nplain\nx         y\n"
    );
    // A column is only as wide as the lines that have it, in their block.
    assert_eq!(
        align("a\tb\tc\nd\te\n").unwrap(),
        "a         b         c\nd         e\n"
    );
    assert_eq!(align("漢字\tx\n").unwrap(), "漢字      x\n");
    assert_eq!(align("").unwrap(), "");
    assert!(align(&format!("{}\n", "\t".repeat(MAX_COLUMNS + 1))).is_err());
}

/// The template parsed and rendered over a small item: its output, or its error.
fn outcome(text: &str) -> Result<String> {
    let item = serde_json::json!({
        "Names": "web", "State": { "Status": "running" }, "Labels": { "a": "b" },
        "Env": ["A=1", "B=2"],
    });
    Format::parse(text)?.render(&item)
}

fn error_of(text: &str) -> String {
    match outcome(text) {
        Ok(output) => panic!("{text:?} rendered {} bytes", output.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unclosed_actions_end_in_an_error() {
    for text in [
        "{{.",
        "{{ .",
        "{{- .",
        "{{$",
        "{{.Names",
        "{{ $x := .",
        "{{-",
        "{{(",
    ] {
        let error = error_of(text);
        assert!(!error.contains('\n'), "{text:?}: {error}");
    }
    assert!(error_of("{{.").contains("unclosed action"));
}

#[test]
fn printf_widths_and_precisions_are_bounded() {
    assert!(error_of(r#"{{printf "%999999999d" 1}}"#).contains("65535"));
    assert!(error_of(r#"{{printf "%.999999999f" 1.5}}"#).contains("65535"));
    assert!(error_of(r#"{{printf "%*d" 999999999 1}}"#).contains("65535"));
    assert!(error_of(r#"{{printf "%[0]d" 1}}"#).contains("index"));
    assert_eq!(
        outcome(r#"{{printf "%5d|%-3s|" 42 "a"}}"#).unwrap(),
        "   42|a  |"
    );
}

#[test]
fn recursion_and_nesting_are_bounded() {
    let error = error_of(r#"{{define "x"}}{{template "x"}}{{end}}{{template "x"}}"#);
    assert!(error.contains("deep"), "{error}");
    let nested = format!("{}x{}", "{{if .}}".repeat(500), "{{end}}".repeat(500));
    assert!(error_of(&nested).contains("deep"));
    let parens = format!("{{{{{}.{}}}}}", "(".repeat(500), ")".repeat(500));
    assert!(error_of(&parens).contains("deep"));
    let ok = format!("{}x{}", "{{if .}}".repeat(20), "{{end}}".repeat(20));
    assert_eq!(outcome(&ok).unwrap(), "x");
}

#[test]
fn multiplying_work_and_values_are_bounded() {
    // Each call makes two more until a string is 40 long: 2^40 calls, no output.
    let calls = r#"{{define "x"}}{{if lt (len .) 40}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#;
    assert!(error_of(calls).contains("steps"));
    let doubling =
        r#"{{define "d"}}{{template "d" (print . .)}}{{end}}{{template "d" "xxxxxxxx"}}"#;
    assert!(error_of(doubling).contains("bytes"));
    let printing = r#"{{define "x"}}{{if lt (len .) 40}}{{printf "%65535d" 1}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#;
    assert!(error_of(printing).contains("prints more than"));
}

/// Templates of Docker's kind, whose every truncation and random splice the fuzz
/// tests feed the engine.
const SEEDS: &[&str] = &[
    "{{.Names}}\t{{.State.Status}}",
    r#"{{- range $k, $v := .Labels -}} {{ $k }}={{ printf "%-8s|%q" $v $v }} {{- end }}"#,
    r#"{{ if eq .Names "web" }}{{ json .Env }}{{ else if .State }}{{ upper .Names }}{{ end }}"#,
    r#"{{define "t"}}{{ index . 0 | lower }}{{end}}{{ with .Env }}{{ template "t" . }}{{ end }}"#,
    "{{/* note */}}{{ len .Env }} {{ (index .Labels `a`) }} {{ printf \"%[1]*.[2]*[3]f\" 4 2 1.5 }}",
    "{{ 'x' }} {{ -1.5e3 }} {{ 0x1F }} {{ true }} {{ nil }} {{ .Missing.Deeper }}",
];

/// Runs one template, as a command would; true when no panic and the output stayed
/// within bounds (the hang the lexer had would keep the test from ever ending).
fn survives(text: &str) -> bool {
    match std::panic::catch_unwind(|| outcome(text)) {
        Ok(Ok(output)) => output.len() <= MAX_OUTPUT,
        Ok(Err(error)) => !error.to_string().contains('\n'),
        Err(_) => false,
    }
}

#[test]
fn every_truncation_of_a_valid_template_ends() {
    for seed in SEEDS {
        for (cut, _) in seed.char_indices() {
            assert!(survives(&seed[..cut]), "{:?}", &seed[..cut]);
        }
    }
}

proptest::proptest! {
    #[test]
    fn spliced_templates_end(
        picks in proptest::collection::vec((0..SEEDS.len(), 0usize..200, 0usize..200), 1..4),
        noise in "[{}().$\"`'%*a-z0-9 |:=-]{0,12}",
    ) {
        let mut text = String::new();
        for (seed, from, to) in picks {
            let seed = SEEDS[seed];
            let bounds: Vec<usize> = seed.char_indices().map(|(i, _)| i).chain([seed.len()]).collect();
            let (a, b) = (bounds[from % bounds.len()], bounds[to % bounds.len()]);
            text.push_str(&seed[a.min(b)..a.max(b)]);
            text.push_str(&noise);
        }
        proptest::prop_assert!(survives(&text), "{:?}", text);
    }
}
