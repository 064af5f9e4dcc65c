fn main() {
    println!("snakkaz-pay");
}
