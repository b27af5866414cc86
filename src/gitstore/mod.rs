//! Reading trees and blobs, writing stage commits, compare-and-swap ref updates and pushes.
//! gix is used only here.
