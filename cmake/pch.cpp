// Translation unit that owns the shared precompiled header (see PplTargets.cmake).
