"""/v1/files (OpenAI-compatible): upload JSONL training files, list, read, delete them."""

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from service.api.deps import SessionDep, SettingsDep, require_api_key
from service.api.errors import ApiError
from service.api.fine_tuning_schemas import FileDeleted, FilePublic, ListPage
from service.api.fine_tuning_serving import parse_id, public_file
from service.store.errors import FileNotFound, FileTooLarge
from service.store.uploaded_files import delete_file, get_file, list_files, save_file
from trainers.jobs.payloads import jobs_using_file

router = APIRouter(prefix="/v1/files", tags=["files"], dependencies=[Depends(require_api_key)])

UPLOAD_HELP = (
    'JSONL, one example a line: {"prompt": str, "label": float in [0, 1]} (label = P(candidate correct)), '
    'or chat {"messages": [...]} whose last, assistant message is the label ("Yes"/"No" or a probability).'
)


@router.post("", response_model=FilePublic)
def upload_file(
    request: Request,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=UPLOAD_HELP)],
    purpose: Annotated[Literal["fine-tune"], Form()],
) -> FilePublic:
    """Validate every line (422 naming the first bad one) and store the file; nothing is kept on error."""
    if file.size is not None and file.size > settings.max_upload_bytes:
        raise FileTooLarge(
            f"file is {file.size} bytes, over the limit of {settings.max_upload_bytes} (W2S_MAX_UPLOAD_BYTES)"
        )
    filename = Path(file.filename or "upload.jsonl").name
    if len(filename) > 255 or "\x00" in filename:
        raise ApiError(
            422, "file name longer than 255 characters or with a NUL character", "invalid_request", "body.file"
        )
    row = save_file(
        request.app.state.sessions,
        settings.artifacts_dir / "files",
        file.file,
        filename=filename,
        purpose=purpose,
        max_bytes=settings.max_upload_bytes,
    )
    return public_file(row)


@router.get("", response_model=ListPage[FilePublic])
def list_uploaded_files(
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    order: Literal["asc", "desc"] = "desc",
    purpose: str | None = None,
) -> ListPage[FilePublic]:
    """Files by creation, newest first unless `order=asc`; pass the last id as `after` for more."""
    after_id = None if after is None else _file_id(after)
    rows = list_files(session, after_id=after_id, limit=limit + 1, newest_first=order == "desc", purpose=purpose)
    page = [public_file(row) for row in rows[:limit]]
    return ListPage[FilePublic](
        data=page,
        has_more=len(rows) > limit,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
    )


@router.get("/{file_id}", response_model=FilePublic)
def retrieve_file(file_id: str, session: SessionDep) -> FilePublic:
    return public_file(get_file(session, _file_id(file_id)))


@router.get("/{file_id}/content", response_class=FileResponse)
def file_content(file_id: str, session: SessionDep) -> FileResponse:
    row = get_file(session, _file_id(file_id))
    return FileResponse(row.path, media_type="application/jsonl", filename=row.filename)


@router.delete("/{file_id}", response_model=FileDeleted)
def remove_file(file_id: str, request: Request) -> FileDeleted:
    """Delete a file unless a queued or running fine-tuning job uses it (409)."""
    delete_file(request.app.state.sessions, _file_id(file_id), jobs_using_file)
    return FileDeleted(id=file_id)


def _file_id(public_id: str) -> int:
    file_id = parse_id(public_id, "file-")
    if file_id is None:
        raise FileNotFound(f"no file with id {public_id!r} (ids look like 'file-12')")
    return file_id
