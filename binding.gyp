{
  "targets": [
    {
      "target_name": "ckpt_native",
      "sources": ["native/ckpt_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "ckpt_hash",
      "sources": ["native/ckpt_hash.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"]
    }
  ]
}
