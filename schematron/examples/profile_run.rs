//! Runs kind 119's schematron over a 30 KB document many times: for `perf record`.
//! `cargo run --release -p egisz-schematron --example profile_run -- 2000`
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
    let sch = std::fs::read(format!("{root}/federal/semd-rules/119/119.sch")).unwrap();
    let doc = std::fs::read_to_string(format!("{root}/samples/consultation-protocol-119.xml")).unwrap();
    let para = "<paragraph>Острота зрения без коррекции OD 0,3, OS 0,4; с коррекцией 1,0 обоих глаз.</paragraph>";
    let at = doc.find("Обращение первичное, амбулаторно.").unwrap() + "Обращение первичное, амбулаторно.".len();
    let doc = format!("{}{}{}", &doc[..at], para.repeat(90), &doc[at..]);
    let schema = egisz_schematron::Schema::compile(&sch, egisz_schematron::HL7_NS, &Default::default()).unwrap();
    let t = std::time::Instant::now();
    let (mut tree, mut run) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for _ in 0..n {
        let a = std::time::Instant::now();
        let d = egisz_schematron::Document::parse(doc.as_bytes(), &Default::default()).unwrap();
        tree += a.elapsed();
        let a = std::time::Instant::now();
        std::hint::black_box(schema.validate(&d, &Default::default()));
        run += a.elapsed();
    }
    println!(
        "{} bytes: {:.3} ms per document (tree {:.3}, rules {:.3})",
        doc.len(),
        t.elapsed().as_secs_f64() * 1000.0 / n as f64,
        tree.as_secs_f64() * 1000.0 / n as f64,
        run.as_secs_f64() * 1000.0 / n as f64
    );
}
