//! Reading a walked file's bytes: at most the size limit (a file that grows while it is read, or
//! never ends, is cut off and reported), and, for a confined walk, through a `cap-std` handle on
//! the root, which refuses any path or link that resolves outside it — also if a folder is
//! swapped for a link between the walk and the read.

use std::io::Read;
use std::path::Path;

use crate::walk::FileEntry;

/// Opens files under one root.
#[derive(Debug)]
pub struct Files {
    confined: Option<cap_std::fs::Dir>,
    max_bytes: u64,
}

impl Files {
    pub fn new(root: &Path, confine: bool, max_bytes: u64) -> std::io::Result<Self> {
        let confined = if confine {
            Some(cap_std::fs::Dir::open_ambient_dir(
                root,
                cap_std::ambient_authority(),
            )?)
        } else {
            None
        };
        Ok(Self {
            confined,
            max_bytes,
        })
    }

    /// The file's bytes. Blocking (file I/O).
    pub fn read(&self, file: &FileEntry) -> Result<Vec<u8>, ReadError> {
        let reader: Box<dyn Read> = match &self.confined {
            Some(dir) => Box::new(dir.open(&file.rel).map_err(|e| {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    ReadError::NotPermitted(e)
                } else {
                    ReadError::Unreadable(e)
                }
            })?),
            None => Box::new(std::fs::File::open(&file.path).map_err(ReadError::Unreadable)?),
        };
        let mut bytes = Vec::with_capacity(file.size.min(self.max_bytes) as usize);
        reader
            .take(self.max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Unreadable)?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(ReadError::Grew {
                limit: self.max_bytes,
            });
        }
        Ok(bytes)
    }
}

/// Why a file's bytes were not read (reported for that file; the ingest goes on).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not read: {0} (outside the ingest root, or no permission)")]
    NotPermitted(#[source] std::io::Error),
    #[error("unreadable: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("grew past the size limit of {limit} bytes while being read")]
    Grew { limit: u64 },
}
