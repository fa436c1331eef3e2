//! No input makes the analyzer allocate by what it claims: peak memory of the `mqtrace`
//! process, from the kernel (`getrusage(RUSAGE_CHILDREN)`), on inputs that once made it
//! allocate hundreds of MB. One test, run in order: the kernel's figure is the largest of all
//! children so far, so each step is checked before a larger one runs.

use std::io::Write as _;
use std::process::Command;

mod peak;
use peak::children_peak_mib;

fn analyze(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mqtrace"))
        .args(["analyze", "--format", "json", "--no-progress"])
        .arg(path)
        .output()
        .expect("run mqtrace")
}

#[test]
fn claimed_and_endless_records_cost_no_memory_of_their_size() {
    let dir = tempfile::tempdir().expect("tempdir");

    // A baseline: a small good file.
    let good = dir.path().join("good.jsonl");
    let mut t = mqtrace_tracegen::Traces::new();
    t.healthy(&mqtrace_tracegen::Msg::new("p", "orders", 1), "1", &["g"]);
    std::fs::write(&good, t.finish()).expect("write");
    let out = analyze(&good);
    assert_eq!(out.status.code(), Some(0));
    let base = children_peak_mib();

    // 7 bytes claiming a 60 MiB protobuf record: it is never allocated.
    let claim = dir.path().join("claim.binpb");
    let mut bytes = (60u32 << 20).to_be_bytes().to_vec();
    bytes.extend_from_slice(b"abc");
    std::fs::write(&claim, bytes).expect("write");
    let out = analyze(&claim);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert!(
        report["input"]["malformed"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("torn record: 3 of 62914560 bytes")),
        "{}",
        report["input"]
    );
    let peak = children_peak_mib();
    assert!(peak < base + 30, "peak {peak} MiB, baseline {base} MiB");

    // A 160 MiB line without a newline: dropped as it is read, not held (it took 2.4 times
    // its size).
    let endless = dir.path().join("endless.jsonl");
    let mut f = std::fs::File::create(&endless).expect("create");
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..160 {
        f.write_all(&chunk).expect("write");
    }
    drop(f);
    let out = analyze(&endless);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert!(
        report["input"]["malformed"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("line longer than 64 MiB")),
        "{}",
        report["input"]
    );
    let peak = children_peak_mib();
    assert!(peak < base + 170, "peak {peak} MiB, baseline {base} MiB");
}
