use std::time::Instant;
use rpod_state::*;
#[path = "../benches/common.rs"]
#[allow(dead_code)]
mod common;
fn main() {
    let cfg = serde_json::to_vec(&common::bench_cfg(5)).unwrap();
    let st = serde_json::to_vec(&ContainerState::configured()).unwrap();
    println!("cfg {} bytes, state {} bytes", cfg.len(), st.len());
    let t = Instant::now();
    for _ in 0..10000 { let _c: ContainerConfig = serde_json::from_slice(&cfg).unwrap(); }
    println!("config decode 10k: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..10000 { let _c: ContainerState = serde_json::from_slice(&st).unwrap(); }
    println!("state decode 10k: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..10000 { let _c: serde_json::Value = serde_json::from_slice(&cfg).unwrap(); }
    println!("Value decode 10k: {:?}", t.elapsed());
    let s = open_memory(&StateOptions::at("/x")).unwrap();
    common::fill(&*s, 10000);
    let t = Instant::now();
    let all = s.all_containers().unwrap();
    println!("list 10k: {:?} {}", t.elapsed(), all.len());
    again();
}
#[allow(dead_code)]
fn sled_probe() {}
#[allow(dead_code)]
pub fn again() {
    let s = open_memory(&StateOptions::at("/x")).unwrap();
    common::fill(&*s, 10000);
    for _ in 0..5 {
        let t = Instant::now();
        let all = s.all_containers().unwrap();
        println!("list 10k: {:?} {}", t.elapsed(), all.len());
    }
}
