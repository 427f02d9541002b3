import Foundation

/// Plain words for why a file operation failed, in place of Foundation's error text
/// ("NSCocoaErrorDomain error 256", "Code=516 ..."), which names neither the cause nor the fix.
///
/// Foundation wraps the system's error number (errno) as the underlying error of a
/// `CocoaError`; the number gives the words. Errors without one keep their own description.
public enum FileFailure {
    /// Why `error`, thrown by a Foundation file operation, happened: "is a folder, not a
    /// file", "permission denied", "the disk is full", ...
    public static func reason(_ error: any Error) -> String {
        let posix = errno(of: error as NSError)
        switch posix {
        case EISDIR: return "is a folder, not a file"
        case ENOENT: return "does not exist"
        case EEXIST: return "already exists (as a file where a folder is needed, or the other way round)"
        case ENOTDIR: return "has a file where its path needs a folder"
        case EACCES, EPERM: return "permission denied"
        case ENOSPC, EDQUOT: return "the disk is full"
        case EROFS: return "is on a read-only file system"
        case ENAMETOOLONG: return "has a name too long for the file system"
        case .some(let code): return String(cString: strerror(code)).lowercased()
        case nil: break
        }
        switch (error as? CocoaError)?.code {
        case .fileNoSuchFile?, .fileReadNoSuchFile?: return "does not exist"
        case .fileReadNoPermission?, .fileWriteNoPermission?: return "permission denied"
        case .fileWriteFileExists?: return "already exists"
        case .fileWriteOutOfSpace?: return "the disk is full"
        case .fileWriteVolumeReadOnly?: return "is on a read-only file system"
        default: return (error as NSError).localizedFailureReason ?? "\(error)"
        }
    }

    /// What keeps `url` from being read as a file: nil for a regular file (or a link to one),
    /// else "does not exist", "is a folder, not a file" or "is not a regular file (a device,
    /// a pipe or a socket)"; reading those whole would fail, block or never end.
    public static func notAFile(_ url: URL) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path),
            let type = attributes[.type] as? FileAttributeType
        else { return "does not exist" }
        switch type {
        case .typeRegular: return nil
        case .typeDirectory: return "is a folder, not a file"
        default: return "is not a regular file (a device, a pipe or a socket)"
        }
    }

    /// Why Foundation's JSON reader refused a file's contents ("Invalid value around line 1,
    /// column 0."), without the error domain and code it wraps them in.
    public static func syntaxReason(_ error: any Error) -> String {
        let error = error as NSError
        return error.userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedFailureReason ?? "\(error)"
    }

    /// The system error number behind a Foundation error, looked for in its chain of
    /// underlying errors.
    private static func errno(of error: NSError) -> Int32? {
        var current: NSError? = error
        while let error = current {
            if error.domain == NSPOSIXErrorDomain { return Int32(error.code) }
            current = (error.userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
        }
        return nil
    }
}
