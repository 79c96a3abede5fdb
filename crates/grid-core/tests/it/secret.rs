use grid_core::Secret;

#[test]
fn a_secret_is_never_formatted() {
    let secret = Secret::new("sk-live-123456");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
    assert_eq!(secret.expose(), "sk-live-123456");
    assert_eq!(secret, Secret::new(String::from("sk-live-123456")));
}
