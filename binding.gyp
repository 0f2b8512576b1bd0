{
  "targets": [
    {
      "target_name": "ctdb_native",
      "sources": ["<!@(find native -name '*.cc' -not -path 'native/helpers/*' | sort)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++20", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "ctdb_mutex_fcntl_helper",
      "type": "executable",
      "sources": ["native/helpers/mutex_fcntl_helper.cc"],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++20", "-O2", "-Wall", "-Wextra"],
      "cflags_cc!": ["-std=gnu++17"]
    },
    {
      "target_name": "ctdb_lock_helper",
      "type": "executable",
      "sources": ["native/helpers/lock_helper.cc", "<!@(find native/tdb -name '*.cc' -not -name binding.cc | sort)"],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++20", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "ldflags": ["-static-libstdc++", "-static-libgcc"],
      "libraries": ["-lpthread"]
    }
  ]
}
