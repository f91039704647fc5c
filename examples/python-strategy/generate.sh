#!/bin/sh
# Regenerates the Python stubs in pluginpb/ from the plugin protocol (Debian: python3-grpc-tools).
set -e
cd "$(dirname "$0")"
/usr/bin/python3 -m grpc_tools.protoc -I ../../plugin/pluginpb --python_out=pluginpb --grpc_python_out=pluginpb plugin.proto
